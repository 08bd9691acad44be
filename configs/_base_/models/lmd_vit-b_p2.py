# LMD discriminative variant (paper §3.2.2, Table 1): ViT-B encoder with 12
# blocks, 8-block decoder of width 512, on the kl-f8 latent of 224 px images
# (28 x 28 x 4) with latent patch 2: 196 tokens of 2*2*4 = 16 values.
model = dict(
    type='LatentMaskingDiffusion',
    # The official LMD projector: Stable Diffusion v1's VAE (= LDM kl-f8),
    # posterior mean, no 0.18215 scaling. Put the official checkpoint here
    # (LDM model.ckpt, SD checkpoint or diffusers folder: see
    # docs/en/projectors.md).
    projector=dict(
        type='KLVAEProjector',
        preset='kl-f8',
        checkpoint='checkpoints/kl-f8/model.ckpt',
        sample_posterior=False,
        scale_factor=1.0),
    # The shapes are stated once, here: the algorithm gives the backbone the
    # projector's latent channels, and the decoder and head the backbone's
    # grid, patch and width.
    backbone=dict(type='LMDViT', arch='base', latent_size=28, patch_size=2),
    neck=dict(
        type='LMDDecoder',
        decoder_embed_dims=512,
        decoder_depth=8,
        decoder_num_heads=16,
        pos_embed_sign=-1.0),  # official "spatial position recall"
    # Per-patch normalised targets, as the official pretraining.
    head=dict(type='LatentReconstructionHead', norm_target=True),
)
