# The latent demo config shrunk for tests: a random tiny-f8 KL-VAE with the
# 'auto' scale factor (calibrated once, by the cache), 2+1 blocks, 24
# training crops x 2 views encoded once in chunks of 5 rows, 4 iterations.
# Tests set train_dataloader.dataset.cache_dir to a temporary folder. The
# projector is random on purpose: allow_random_projector=True.
_base_ = ['../../configs/lmd_vit-tiny_klvae_photos_cs.py']

model = dict(
    projector=dict(checkpoint=None),
    backbone=dict(arch=dict(embed_dims=48, num_layers=2, num_heads=3)),
    neck=dict(decoder_embed_dims=32, decoder_depth=1))
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        dataset=dict(num_crops=24),
        num_views=2,
        batch_size=5,
        allow_random_projector=True))
val_dataloader = dict(batch_size=8, dataset=dict(num_crops=8))
test_dataloader = val_dataloader

max_iters = 4
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=1),
    dict(type='CosineAnnealingLR', T_max=max_iters - 1, eta_min=1e-5,
         by_epoch=False, begin=1, end=max_iters),
]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=-1),
    visualization=dict(interval=max_iters, num_images=2))
