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

# 1000 iterations (the pixel config's 2000 at about twice the cost per
# iteration: every crop is encoded by the projector), 50 warm-up.
max_iters = 1000
train_cfg = dict(max_iters=max_iters, val_interval=500)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=1e-5,
         by_epoch=False, begin=50, end=max_iters),
]
