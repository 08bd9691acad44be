"""KL divergence of a diagonal Gaussian posterior from N(0, I): the KL-VAE's
stage-1 regulariser, defined with the projector that owns it."""
from ..projectors.kl_vae import gaussian_kl

__all__ = ['gaussian_kl']
