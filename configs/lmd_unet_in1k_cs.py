# "w/o MAE" ablation (paper Table 5): LMD-CS with the ViT encoder-decoder
# replaced by a U-Net on the full 28x28x4 kl-f8 latent (masked 2x2 patches
# filled with a learned embedding, loss on the masked patches only).
# Run: tools/dist_train.sh configs/lmd_unet_in1k_cs.py 8
_base_ = ['./lmd_vit-b_in1k_cs.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='LMDUNet',
        latent_size=28,
        patch_size=2,
        base_channels=128,
        channel_mults=(1, 2, 2),
        num_res_blocks=2,
        norm_groups=32),
    # the neck predicts: output norm + conv of the U-Net features (its
    # shapes are derived from the backbone)
    neck=dict(_delete_=True, type='LMDUNetDecoder'))
