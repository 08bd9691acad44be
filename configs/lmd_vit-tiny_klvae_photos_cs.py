# The latent demo (stage 2 of the README's main job, tools/demo.py): the tiny
# LMD of lmd_vit-tiny_pixel_photos_cs.py, trained in the latent space of the
# tiny KL-VAE of configs/projectors/klvae_tiny-f8_photos.py (stage 1).
# 64 px crops -> 8x8x4 latent, patch 1: the same 64 tokens as the pixel
# config, of 4 values instead of 8*8*3. Training crops encoded once (latent
# cache), validation on images. Cosine mask-ratio schedule 0.15 -> 0.75.
_base_ = [
    '_base_/models/lmd_vit-tiny_klvae-tiny-f8_p1.py',
    '_base_/datasets/embedded_photos_latent.py',
    '_base_/schedules/adamw_iter_pretrain.py',
    '_base_/photos_runtime.py',
]

# 1000 iterations, 50 warm-up.
max_iters = 1000
train_cfg = dict(max_iters=max_iters, val_interval=500)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=1e-5,
         by_epoch=False, begin=50, end=max_iters),
]
