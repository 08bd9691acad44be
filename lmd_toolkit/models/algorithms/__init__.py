from .autoencoder_trainer import (AutoencoderOptimWrapperConstructor,
                                  AutoencoderTrainer)
from ..lmd_vit import LatentMaskingDiffusion

__all__ = [
    'LatentMaskingDiffusion', 'AutoencoderTrainer',
    'AutoencoderOptimWrapperConstructor'
]
