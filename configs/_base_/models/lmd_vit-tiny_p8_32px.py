# lmd_vit-tiny_p8.py smaller, for 32 px images (the digits): 4 encoder
# blocks of width 128 (4 heads), 2 decoder blocks of width 64, patch 8:
# 16 tokens of 8*8*3 values; per-patch normalised targets (MAE's norm_pix,
# the official recipe).
_base_ = ['./lmd_vit-tiny_p8.py']

model = dict(
    backbone=dict(
        arch=dict(embed_dims=128, num_layers=4, num_heads=4),
        latent_size=32),
    neck=dict(decoder_embed_dims=64),
    head=dict(norm_target=True))
