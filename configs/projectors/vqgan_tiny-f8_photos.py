# Stage-1 CPU demo: train a tiny VQ-GAN projector (preset tiny-f8, 0.81 M
# parameters, 1024 codes, 64 px -> 8x8x4 latent) on 64 px crops of the
# embedded photos (docs/en/stage1.md). Minutes on 2 CPU cores. Data,
# discriminator, optimizers, schedule and hooks as the KL-VAE demo.
_base_ = ['./klvae_tiny-f8_photos.py']

# Model: VQGAN losses (codebook + 0.25 x commitment, paper eq. 4; the
# codebook perplexity is logged) instead of the KL term. Reconstruction
# quality on held-out crops is measured through the quantised codes.
model = dict(
    projector=dict(
        _delete_=True,
        type='VQGANProjector',
        preset='tiny-f8',
        beta=0.25,
        init_cfg={{_base_.model.projector.init_cfg}}),
    codebook_weight=1.0)
