# The tiny LMD of lmd_vit-tiny_p8.py in the latent space of the tiny KL-VAE
# of configs/projectors/klvae_tiny-f8_photos.py (stage 1): 64 px crops ->
# 8x8x4 latent, patch 1: the same 64 tokens as the pixel model, of 4 values
# instead of 8*8*3.
_base_ = ['./lmd_vit-tiny_p8.py']

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
    backbone=dict(latent_size=8, patch_size=1),
    # Raw latent targets (lmd_vit-tiny_p8.py's head): the projector decodes
    # the predictions into honest images for the reconstruction grids.
)
