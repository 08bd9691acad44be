# As lmd_vit-b_p2.py with the official scripts' latent patch 4:
# 49 tokens of 4*4*4 = 64 values on the 28 x 28 x 4 latent.
_base_ = ['./lmd_vit-b_p2.py']
model = dict(backbone=dict(patch_size=4))
