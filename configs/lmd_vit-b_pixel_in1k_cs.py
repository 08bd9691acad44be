# "w/o LSP" ablation (paper Table 5): no latent space projector. The same
# ViT-B on pixels with patch 16: 196 tokens of 16*16*3 values, the token
# count of the latent patch-2 model.
_base_ = ['./lmd_vit-b_in1k_cs.py']
model = dict(
    projector=dict(_delete_=True, type='IdentityProjector'),
    backbone=dict(latent_size=224, patch_size=16))
# Pixels are not cached (the identity projector's "latents" are the images):
# the ImageNet images are served as they are, with a fresh crop every epoch.
train_dataloader = dict(dataset=dict(encode_on_the_fly=True))
