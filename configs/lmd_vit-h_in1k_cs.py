# LMD-CS at ViT-H: lmd_vit-l_in1k_cs.py (the ViT-B recipe with FSDP,
# activation checkpointing and bf16 autocast; docs/en/distributed.md) with
# the ViT-H encoder: 32 blocks of width 1280 (16 heads). The decoder stays
# 8 blocks of width 512 (16 heads), as MAE keeps it for every encoder size.
# Run: tools/dist_train.sh configs/lmd_vit-h_in1k_cs.py 8
_base_ = ['./lmd_vit-l_in1k_cs.py']

# The latent linear layer maps the encoder width 1280 to 512.
model = dict(backbone=dict(arch='huge'))
