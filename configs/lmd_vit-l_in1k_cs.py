# LMD-CS at ViT-L: the recipe of lmd_vit-b_in1k_cs.py (kl-f8 latent, patch
# 2, ImageNet-1K, cosine mask-ratio schedule 0.15 -> 0.75, Adan) on the
# ViT-L encoder, 24 blocks of width 1024 (16 heads), trained with FSDP,
# activation checkpointing and bf16 autocast (docs/en/distributed.md). The
# decoder stays 8 blocks of width 512 (16 heads), as MAE keeps it for every
# encoder size.
# Run: tools/dist_train.sh configs/lmd_vit-l_in1k_cs.py 8
_base_ = [
    '_base_/models/lmd_vit-l_p2.py',
    '_base_/datasets/in1k_pretrain_latent.py',
    '_base_/schedules/adan_coslr_pretrain.py',
    '_base_/lmd_runtime.py',
    '_base_/strategies/fsdp.py',
]

# bf16 autocast around forward, fp32 master weights, no loss scaling; the
# frozen projector runs in fp32 (when it encodes at all: the latents come
# from the cache).
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16')
