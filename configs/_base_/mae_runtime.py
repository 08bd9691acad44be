# default_runtime.py for mmpretrain's MAE: it has no mask-ratio schedule,
# no reconstruction mode and no latent cache, so only these default hooks
# (no mask-ratio, visualization, latent-cache, non-finite or resume hooks).
_base_ = ['./default_runtime.py']

default_hooks = dict(
    _delete_=True,
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=5000, by_epoch=False,
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
