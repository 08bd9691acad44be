# Baseline of tools/reproduce.py (paper Table 1): mmpretrain's own MAE
# (MAEViT + MAEPretrainDecoder + MAEPretrainHead) at the size, data, budget
# and optimiser of lmd_vit-tiny_pixel_photos_cs.py: 64 px, patch 8, 6 + 2
# blocks, MAE's fixed mask ratio 0.75, raw pixel targets (norm_pix=False,
# like the pixel LMD config, so both losses are on the same target).
_base_ = ['./lmd_vit-tiny_pixel_photos_cs.py']

model = dict(
    _delete_=True,
    type='mmpretrain.MAE',
    backbone=dict(
        type='mmpretrain.MAEViT',
        arch=dict(embed_dims=192, num_layers=6, num_heads=3,
                  feedforward_channels=768),
        img_size=64,
        patch_size=8,
        mask_ratio=0.75),
    neck=dict(
        type='mmpretrain.MAEPretrainDecoder',
        num_patches=64,
        patch_size=8,
        in_chans=3,
        embed_dim=192,
        decoder_embed_dim=128,
        decoder_depth=2,
        decoder_num_heads=4,
        mlp_ratio=4.),
    head=dict(
        type='mmpretrain.MAEPretrainHead',
        norm_pix=False,
        patch_size=8,
        loss=dict(type='mmpretrain.PixelReconstructionLoss',
                  criterion='L2')),
    # Pixels to [-1, 1], as LMDDataPreprocessor does.
    data_preprocessor=dict(
        type='mmpretrain.SelfSupDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=False))

# MAE has no mask-ratio schedule and no reconstruction mode: the default
# hooks without the mask-ratio and visualization hooks, and no validation.
default_hooks = dict(
    _delete_=True,
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=500, by_epoch=False,
                    max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
train_cfg = dict(val_interval=10**9)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
