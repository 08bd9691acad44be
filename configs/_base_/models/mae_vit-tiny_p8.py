# mmpretrain's MAE (mae_vit-b_p16.py) at the size of the tiny LMD
# (lmd_vit-tiny_p8.py): 64 px, patch 8 (64 tokens), 6 + 2 blocks (192 / 128
# wide), MAE's fixed mask ratio 0.75, raw pixel targets (norm_pix=False,
# like the pixel LMD, so both losses are on the same target).
_base_ = ['./mae_vit-b_p16.py']

model = dict(
    backbone=dict(
        # A dict instead of the base's arch name 'b'.
        arch=dict(_delete_=True, embed_dims=192, num_layers=6, num_heads=3,
                  feedforward_channels=768),
        img_size=64,
        patch_size=8),
    neck=dict(
        num_patches=64,
        patch_size=8,
        embed_dim=192,
        decoder_embed_dim=128,
        decoder_depth=2,
        decoder_num_heads=4),
    head=dict(norm_pix=False, patch_size=8))
