# lmd_vit-b_p2.py with the ViT-L encoder: 24 blocks of width 1024 (16
# heads), activation checkpointing in every encoder and decoder block. The
# decoder stays 8 blocks of width 512 (16 heads), as MAE keeps it for every
# encoder size.
_base_ = ['./lmd_vit-b_p2.py']

model = dict(
    backbone=dict(arch='large', with_cp=True),
    # with_cp: every encoder and decoder block is recomputed in backward
    # instead of keeping its activations (only the block inputs stay). The
    # latent linear layer maps the encoder width 1024 to 512.
    neck=dict(with_cp=True))
