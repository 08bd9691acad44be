# Latent ViT-B classifier for ImageNet-1K fine-tuning (paper Table 2): the
# frozen kl-f8 projector (224 px -> 28 x 28 x 4 latent), the LMD encoder on
# latent patches 2 (196 tokens), mean-pooled patch tokens + fc_norm, a
# linear head. Weights: set backbone.init_cfg.checkpoint to an LMD
# pretraining checkpoint (encoder keys 'backbone.*'), or load a converted
# one with load_from (tools/model_converters/lmd_to_mmpretrain.py).
_base_ = ['./latent_vit_classifier.py']

model = dict(
    backbone=dict(
        projector=dict(
            type='KLVAEProjector',
            preset='kl-f8',
            checkpoint='checkpoints/kl-f8/model.ckpt',
            sample_posterior=False,
            scale_factor=1.0),
        encoder=dict(
            type='LMDViT', arch='base', in_channels=4, latent_size=28,
            patch_size=2),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/lmd_vit-b_in1k_cs/epoch_400.pth',
            prefix='backbone.')),
    # With mixup / cutmix the label-smoothed targets are soft.
    head=dict(num_classes=1000, in_channels=768),
    # mmpretrain's LoadImageFromFile gives BGR: to_rgb=True flips it. Mixup
    # 0.8 / CutMix 1.0, one of the two per batch (MAE's recipe).
    data_preprocessor=dict(
        num_classes=1000,
        to_rgb=True,
        batch_augments=dict(augments=[
            dict(type='mmpretrain.Mixup', alpha=0.8),
            dict(type='mmpretrain.CutMix', alpha=1.0),
        ])),
)
