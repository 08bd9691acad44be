# The demo (README's main job): a tiny LMD on 64 px crops of the photographs
# embedded in scikit-image / scikit-learn / matplotlib, on a 2-core CPU in a
# few minutes. Pixel space (identity projector) with patch 8: 64 tokens of
# 8*8*3 values. Cosine mask-ratio schedule 0.15 -> 0.75 over 2000 iterations.
_base_ = [
    '_base_/datasets/embedded_photos.py',
    '_base_/default_runtime.py',
]

model = dict(
    type='LatentMaskingDiffusion',
    projector=dict(type='IdentityProjector'),
    backbone=dict(
        type='LMDViT',
        arch=dict(embed_dims=192, num_layers=6, num_heads=3),
        in_channels=3,
        latent_size=64,
        patch_size=8),
    neck=dict(
        type='LMDDecoder',
        num_patches=64,
        patch_size=8,
        in_channels=3,
        embed_dims=192,
        decoder_embed_dims=128,
        decoder_depth=2,
        decoder_num_heads=4),
    # Raw targets, so that reconstructions are honest images (no per-patch
    # statistics of the ground truth are used to de-normalise them).
    head=dict(type='LatentReconstructionHead', patch_size=8,
              norm_target=False),
    eval_mask_ratio=0.5)

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95),
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

max_iters = 2000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=500)
val_cfg = dict(type='ValLoop')
log_processor = dict(by_epoch=False)
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', T_max=max_iters - 100, eta_min=1e-5,
         by_epoch=False, begin=100, end=max_iters),
]

# Reconstruction quality at ratio 0.5 (model.eval_mask_ratio) on held-out
# photos.
val_evaluator = [dict(type='PSNR'), dict(type='SSIM')]
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, max_keep_ckpts=2),
    mask_ratio=dict(
        type='MaskRatioSchedulerHook',
        scheduler=dict(type='CosineMaskRatio', min_ratio=0.15,
                       max_ratio=0.75)),
    visualization=dict(
        type='ReconstructionVisualizationHook',
        interval=500,
        num_images=4,
        mask_ratios=(0.25, 0.5, 0.75)))
