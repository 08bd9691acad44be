# Registry scope: `type=` names resolve in lmd_toolkit first, then mmengine.
default_scope = 'lmd_toolkit'

# Hooks every run has. lmd_runtime.py adds the MaskRatioSchedulerHook.
default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # lmd_toolkit's CheckpointHook: mmengine's, but it saves (atomically)
    # before it deletes the oldest checkpoint.
    checkpoint=dict(
        type='CheckpointHook', interval=5000, by_epoch=False,
        max_keep_ckpts=3),
    # A NaN / Inf loss or gradient stops training before a checkpoint can
    # hold it; max_bad_steps > 1 skips that many - 1 bad steps in a row.
    non_finite=dict(type='NonFiniteGuardHook', max_bad_steps=1),
    # Random states, sampler and config in every checkpoint; --resume checks
    # the config and continues the unbroken run exactly.
    resume=dict(type='ResumeHook', allow_config_changes=False),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Encodes a latent-first LatentCacheDataset once, before training, with
    # the model's projector (a no-op for image datasets).
    latent_cache=dict(type='LatentCacheHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # nccl on GPU; without CUDA the tools start a gloo group instead.
    dist_cfg=dict(backend='nccl'),
)

# DDP wrapper that also works on CPU (mmengine's passes device_ids there).
# Scoped name: mmengine's Runner looks wrappers up in its root registry.
model_wrapper_cfg = dict(
    type='lmd_toolkit.LMDDistributedDataParallel',
    broadcast_buffers=False,
    find_unused_parameters=False)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

# Losses and times are smoothed over 10 iterations; mask_ratio and lr are
# logged as their current value.
log_processor = dict(window_size=10)
log_level = 'INFO'

load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True, deterministic=False)
