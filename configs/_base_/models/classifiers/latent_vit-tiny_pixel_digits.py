# The tiny pixel-space LMD encoder of configs/lmd_vit-tiny_pixel_digits_cs.py
# as a 10-class digits classifier: identity projector, 32 px, patch 8 (16
# tokens), mean-pooled tokens + fc_norm, a linear head. Encoder weights from
# the pretraining run (set init_cfg.checkpoint; None = random init).
model = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(
        type='LatentViTBackbone',
        projector=dict(type='IdentityProjector'),
        encoder=dict(
            type='LMDViT',
            arch=dict(embed_dims=128, num_layers=4, num_heads=4),
            in_channels=3,
            latent_size=32,
            patch_size=8),
        global_pool='avg',
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/lmd_vit-tiny_pixel_digits_cs/iter_600.pth',
            prefix='backbone.')),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(
            type='mmpretrain.LabelSmoothLoss', label_smooth_val=0.1,
            mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    # uint8 RGB -> [-1, 1] (DigitsDataset gives RGB: no to_rgb). No mixup /
    # cutmix on this tiny set and budget (the ImageNet recipe has them).
    data_preprocessor=dict(
        type='mmpretrain.ClsDataPreprocessor',
        num_classes=10,
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=False),
)
