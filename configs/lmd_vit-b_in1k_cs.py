# LMD-CS: discriminative ViT-B, kl-f8 latent (patch 2), ImageNet-1K,
# cosine mask-ratio schedule 0.15 -> 0.75 (the paper's best), official
# Adan recipe. Run: tools/dist_train.sh configs/lmd_vit-b_in1k_cs.py 2
_base_ = [
    '_base_/models/lmd_vit-b_p2.py',
    '_base_/datasets/in1k_pretrain_latent.py',
    '_base_/schedules/adan_coslr_pretrain.py',
    '_base_/lmd_runtime.py',
]
