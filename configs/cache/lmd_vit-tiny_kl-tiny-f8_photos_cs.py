# The tiny demo LMD in the latent space of a tiny-f8 KL-VAE, encoding every
# 64 px crop on the fly: 8 x 8 x 4 latents, latent patch 1 (64 tokens of 4
# values). The image config that a latent cache is made from:
#   python tools/misc/cache_latents.py \
#       configs/cache/lmd_vit-tiny_kl-tiny-f8_photos_cs.py
# then train from the cache with lmd_vit-tiny_kl-tiny-f8_photos-cache_cs.py.
_base_ = ['../lmd_vit-tiny_pixel_photos_cs.py']

# No pretrained weights exist offline: the projector is random unless a
# stage-1 checkpoint is given here (its SHA-256 goes into the cache manifest).
model = dict(
    projector=dict(
        _delete_=True,
        type='KLVAEProjector',
        preset='tiny-f8',
        checkpoint=None,
        scale_factor=1.0),
    backbone=dict(in_channels=4, latent_size=8, patch_size=1),
    neck=dict(num_patches=64, patch_size=1, in_channels=4),
    head=dict(patch_size=1))
