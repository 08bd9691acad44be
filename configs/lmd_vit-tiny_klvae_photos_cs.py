# The latent demo (stage 2 of the README's main job, tools/demo.py): the tiny
# LMD of lmd_vit-tiny_pixel_photos_cs.py, trained in the latent space of the
# tiny KL-VAE of configs/projectors/klvae_tiny-f8_photos.py (stage 1).
# 64 px crops -> 8x8x4 latent, patch 1: the same 64 tokens as the pixel
# config, of 4 values instead of 8*8*3.
_base_ = ['./lmd_vit-tiny_pixel_photos_cs.py']

# The stage-1 checkpoint: tools/demo.py trains it (or reuses it) and passes
# its path (this default is where the demo writes it); by hand:
# --cfg-options model.projector.checkpoint=PATH.
# scale_factor='auto' (LDM's scale_by_std): 1 / std of the first batch's
# latents, kept in the checkpoint, so the raw-latent MSE is on unit scale.
model = dict(
    projector=dict(
        _delete_=True,
        type='KLVAEProjector',
        preset='tiny-f8',
        checkpoint='work_dirs/demo/stage1/iter_3000.pth',
        scale_factor='auto'),
    backbone=dict(in_channels=4, latent_size=8, patch_size=1),
    neck=dict(num_patches=64, patch_size=1, in_channels=4),
    # Raw latent targets: the projector decodes the predictions into
    # honest images for the reconstruction grids.
    head=dict(patch_size=1, norm_target=False))

# Latent-first: the 2048 training crops are encoded once by the frozen
# projector (4 seeded views of the flip pipeline, fp16) into
# data/latent_cache/EmbeddedPhotos_<key> at the start of the first run
# (LatentCacheHook); later runs, and other configs with the same projector
# and data, reuse it. Each epoch serves one random view of every crop.
# Encode every crop at every iteration instead (a fresh flip each time):
#   --cfg-options train_dataloader.dataset.encode_on_the_fly=True
# Validation stays on images: metrics and grids compare with the photos.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LatentCacheDataset',
        cache_dir='data/latent_cache',
        dataset=dict(
            type='EmbeddedPhotos',
            split='train',
            crop_size=64,
            num_crops=2048,
            pipeline=[
                dict(type='mmpretrain.RandomFlip', prob=0.5),
                dict(type='mmpretrain.PackInputs'),
            ]),
        num_views=4,
        views='random'))

# 1000 iterations, 50 warm-up.
max_iters = 1000
train_cfg = dict(max_iters=max_iters, val_interval=500)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=1e-5,
         by_epoch=False, begin=50, end=max_iters),
]
