# Stage-1 CPU demo: train a tiny VQ-GAN projector (preset tiny-f8, 0.81 M
# parameters, 1024 codes, 64 px -> 8x8x4 latent) on 64 px crops of the
# embedded photos (docs/en/stage1.md). Minutes on 2 CPU cores. Data,
# discriminator, optimizers, schedule and hooks as the KL-VAE demo.
_base_ = ['./klvae_tiny-f8_photos.py']

# Model: VQGAN losses (codebook + 0.25 x commitment, paper eq. 4; the
# codebook perplexity is logged) instead of the KL term. The projector dict
# merges into the KL demo's: its preset name (tiny-f8) and unit-gain init
# stay. Reconstruction quality on held-out crops is measured through the
# quantised codes.
model = dict(
    projector=dict(type='VQGANProjector', beta=0.25),
    codebook_weight=1.0)
