# LMD-CS in the released official code's setting: discriminative ViT-B on
# the kl-f8 latent (28 x 28 x 4 for 224 px) with latent patch 4, i.e. 7 x 7
# = 49 tokens of 4*4*4 = 64 values (lmd_vit-b_in1k_cs.py uses the paper
# Table 1's "16 x 16" image patches = latent patch 2, 196 tokens). Latents
# are encoded once (in1k_pretrain_latent.py). Cosine schedule, Adan.
# Run: tools/dist_train.sh configs/lmd_vit-b-p4_in1k_cs.py 2
_base_ = [
    '_base_/models/lmd_vit-b_p4.py',
    '_base_/datasets/in1k_pretrain_latent.py',
    '_base_/schedules/adan_coslr_pretrain.py',
    '_base_/lmd_runtime.py',
]
