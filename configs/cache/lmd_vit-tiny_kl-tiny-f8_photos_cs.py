# The tiny latent LMD of ../lmd_vit-tiny_klvae_photos_cs.py (8 x 8 x 4
# latents of 64 px crops, patch 1), encoding every crop on the fly. The image
# config that a latent cache is made from:
#   python tools/misc/cache_latents.py \
#       configs/cache/lmd_vit-tiny_kl-tiny-f8_photos_cs.py
# then train from the cache with lmd_vit-tiny_kl-tiny-f8_photos-cache_cs.py.
_base_ = ['../lmd_vit-tiny_klvae_photos_cs.py']

# A fixed scale factor (the cache manifest records it), and a random
# projector unless a stage-1 checkpoint is given here (its SHA-256 goes into
# the cache manifest): tools/demo.py writes one to
# work_dirs/demo/stage1/iter_N.pth.
model = dict(projector=dict(checkpoint=None, scale_factor=1.0))
