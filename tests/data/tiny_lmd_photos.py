# The demo config shrunk for tests: 2+1 blocks, 64 training crops, 8
# iterations, a checkpoint every 4, every iteration logged.
_base_ = ['../../configs/lmd_vit-tiny_pixel_photos_cs.py']

model = dict(
    backbone=dict(arch=dict(embed_dims=48, num_layers=2, num_heads=3)),
    neck=dict(decoder_embed_dims=32, decoder_depth=1))
train_dataloader = dict(batch_size=4, dataset=dict(num_crops=64))
val_dataloader = dict(batch_size=8, dataset=dict(num_crops=8))
test_dataloader = val_dataloader

max_iters = 8
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type='CosineAnnealingLR', T_max=max_iters - 2, eta_min=1e-5,
         by_epoch=False, begin=2, end=max_iters),
]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=4, max_keep_ckpts=-1),
    visualization=dict(interval=4, num_images=2))
