# LMD side of tools/analysis_tools/time_to_accuracy.py: the tiny latent LMD of
# ../lmd_vit-tiny_klvae_photos_cs.py unchanged (6 + 2 blocks, 192 wide, on
# the 8 x 8 x 4 latents of the stage-1 tiny KL-VAE, patch 1, cosine mask
# ratio 0.15 -> 0.75, AdamW lr 1e-3, batch 16, linear warm-up + cosine LR),
# trained from a latent cache of the images mmpretrain's MAE trains on
# (mae_vit-tiny_pixel_digits.py).
_base_ = ['../lmd_vit-tiny_klvae_photos_cs.py']

# The images the cache is encoded from (1,438 training digits at 64 px, as
# for MAE). The tool replaces them with the training split of its --data,
# writes the cache once with write_latent_cache (timed apart from training)
# and sets cache_dir and the projector's checkpoint and scale factor (the
# 'auto' value the cache was calibrated with).
cache_dataset = dict(
    type='DigitsDataset',
    split='train',
    img_size=64,
    pipeline=[dict(type='mmpretrain.PackInputs')])
# No augmentation in either pipeline, so one cached view per image.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LatentCacheDataset',
        cache_dir='work_dirs/time_to_accuracy/latent_cache',
        views='random'))

# No validation: the tool probes the encoder in memory, outside the timed
# training. The budget in seconds becomes max_iters (and the LR and
# mask-ratio schedules follow it).
train_cfg = dict(val_interval=10**9)
val_dataloader = val_cfg = val_evaluator = None
# The base's hooks without the reconstruction grids (they need validation
# images) and checkpoints; the mask-ratio schedule is the base's cosine
# 0.15 -> 0.75.
default_hooks = dict(
    _delete_=True,
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    checkpoint=None,
    mask_ratio=dict(
        type='MaskRatioSchedulerHook',
        scheduler=dict(type='CosineMaskRatio', min_ratio=0.15,
                       max_ratio=0.75)))
