# A tiny LMD pretrained on the digits images (pixel space, identity
# projector) in one or two minutes on a 2-core CPU, for the downstream checks
# (configs/downstream/*_digits.py, tools/analysis_tools/digits_downstream.py).
# 32 px, patch 8: 16 tokens of 8*8*3 values. Cosine mask-ratio schedule.
_base_ = [
    '_base_/datasets/digits_pretrain.py',
    '_base_/default_runtime.py',
]

model = dict(
    type='LatentMaskingDiffusion',
    projector=dict(type='IdentityProjector'),
    backbone=dict(
        type='LMDViT',
        arch=dict(embed_dims=128, num_layers=4, num_heads=4),
        in_channels=3,
        latent_size=32,
        patch_size=8),
    neck=dict(
        type='LMDDecoder',
        num_patches=16,
        patch_size=8,
        in_channels=3,
        embed_dims=128,
        decoder_embed_dims=64,
        decoder_depth=2,
        decoder_num_heads=4),
    # Per-patch normalised targets (MAE's norm_pix, the official recipe).
    head=dict(type='LatentReconstructionHead', patch_size=8,
              norm_target=True),
    eval_mask_ratio=0.5)

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(
        custom_keys={
            'norm': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.0),
            'mask_token': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
        }))

max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
log_processor = dict(by_epoch=False)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', T_max=max_iters - 100, eta_min=1e-5,
         by_epoch=False, begin=100, end=max_iters),
]

# Reconstruction quality at ratio 0.5 on the held-out digits.
val_evaluator = [dict(type='PSNR')]
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
    mask_ratio=dict(
        type='MaskRatioSchedulerHook',
        scheduler=dict(type='CosineMaskRatio', min_ratio=0.15,
                       max_ratio=0.75)))
