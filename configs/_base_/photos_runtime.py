# lmd_runtime.py (cosine mask-ratio schedule 0.15 -> 0.75) for the LMD
# demos on the embedded photos: iteration-based logs every 50 iterations,
# checkpoints every 500 (the last 2 kept), and reconstruction grids of
# 4 held-out photos at ratios 0.25 / 0.5 / 0.75 every 500 iterations.
_base_ = ['./lmd_runtime.py']

log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, max_keep_ckpts=2),
    visualization=dict(
        type='ReconstructionVisualizationHook',
        interval=500,
        num_images=4,
        mask_ratios=(0.25, 0.5, 0.75)))
