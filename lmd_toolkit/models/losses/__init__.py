"""Stage-1 (projector training) losses: plain functions and modules."""
from .gan import adaptive_gan_weight, hinge_d_loss, hinge_g_loss
from .kl import gaussian_kl
from .perceptual import LPIPSLoss
from .reconstruction import pixel_loss

__all__ = [
    'pixel_loss', 'LPIPSLoss', 'gaussian_kl', 'hinge_d_loss', 'hinge_g_loss',
    'adaptive_gan_weight'
]
