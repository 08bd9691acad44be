from .base import BaseProjector
from .checkpoint import load_projector_weights
from .identity import IdentityProjector
from .kl_vae import KLVAEProjector
from .quantizer import VectorQuantizer
from .vqgan import VQGANProjector

__all__ = [
    'BaseProjector', 'IdentityProjector', 'KLVAEProjector', 'VQGANProjector',
    'VectorQuantizer', 'load_projector_weights'
]
