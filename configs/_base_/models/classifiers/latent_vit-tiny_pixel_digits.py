# The tiny pixel-space LMD encoder of configs/lmd_vit-tiny_pixel_digits_cs.py
# as a 10-class digits classifier: identity projector, 32 px, patch 8 (16
# tokens), mean-pooled tokens + fc_norm, a linear head. Encoder weights from
# the pretraining run (set init_cfg.checkpoint; None = random init).
_base_ = ['./latent_vit_classifier.py']

model = dict(
    backbone=dict(
        projector=dict(type='IdentityProjector'),
        encoder=dict(
            type='LMDViT',
            arch=dict(embed_dims=128, num_layers=4, num_heads=4),
            in_channels=3,
            latent_size=32,
            patch_size=8),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/lmd_vit-tiny_pixel_digits_cs/iter_600.pth',
            prefix='backbone.')),
    head=dict(num_classes=10, in_channels=128),
    # DigitsDataset gives RGB: no to_rgb. No mixup / cutmix on this tiny set
    # and budget (the ImageNet recipe has them).
    data_preprocessor=dict(num_classes=10, to_rgb=False),
)
