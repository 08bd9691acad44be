# The tiny LMD of the CPU demo (configs/lmd_vit-tiny_pixel_photos_cs.py):
# 6 encoder blocks of width 192 (3 heads), 2 decoder blocks of width 128,
# pixel space (identity projector) on 64 px images with patch 8: 64 tokens
# of 8*8*3 values. Reconstructions at ratio 0.5 in validation.
model = dict(
    type='LatentMaskingDiffusion',
    projector=dict(type='IdentityProjector'),
    backbone=dict(
        type='LMDViT',
        arch=dict(embed_dims=192, num_layers=6, num_heads=3),
        latent_size=64,
        patch_size=8),
    # grid, patch, channels and width: derived from the backbone
    neck=dict(
        type='LMDDecoder',
        decoder_embed_dims=128,
        decoder_depth=2,
        decoder_num_heads=4),
    # Raw targets, so that reconstructions are honest images (no per-patch
    # statistics of the ground truth are used to de-normalise them).
    head=dict(type='LatentReconstructionHead', norm_target=False),
    eval_mask_ratio=0.5)
