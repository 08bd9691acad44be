# "w/o MAE" ablation (paper Table 5) of the latent demo: the ViT encoder-
# decoder of lmd_vit-tiny_klvae_photos_cs.py replaced by a U-Net that sees
# the whole 8x8x4 latent, masked patches filled with a learned embedding;
# loss on the masked patches only. Everything else (projector, data,
# optimiser, schedule) is inherited.
_base_ = ['./lmd_vit-tiny_klvae_photos_cs.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='LMDUNet',
        latent_size=8,
        patch_size=1,
        base_channels=64,
        channel_mults=(1, 2),
        num_res_blocks=1),
    # the neck predicts: output norm + conv of the U-Net features (its
    # shapes are derived from the backbone)
    neck=dict(_delete_=True, type='LMDUNetDecoder'))
