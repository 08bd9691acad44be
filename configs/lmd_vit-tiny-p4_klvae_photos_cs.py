# The official latent patch-4 geometry at demo scale: the tiny LMD of
# lmd_vit-tiny_klvae_photos_cs.py on 224 px crops of the embedded photos,
# whose tiny-f8 latent is 28 x 28 x 4 as kl-f8's of an ImageNet image, cut
# into 7 x 7 = 49 tokens of 4*4*4 = 64 values (lmd_vit-b-p4_in1k_cs.py at
# 1/4 width and 1/2 depth). Latents encoded once, 2 views per crop.
_base_ = ['./lmd_vit-tiny_klvae_photos_cs.py']

crop_size = 224
model = dict(backbone=dict(latent_size=28, patch_size=4))
train_dataloader = dict(
    dataset=dict(dataset=dict(crop_size=crop_size, num_crops=1024),
                 num_views=2))
val_dataloader = dict(dataset=dict(crop_size=crop_size, num_crops=32))
test_dataloader = val_dataloader
