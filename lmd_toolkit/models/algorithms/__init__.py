from .autoencoder_trainer import (AutoencoderOptimWrapperConstructor,
                                  AutoencoderTrainer)
from .lmd import LatentMaskingDiffusion

__all__ = [
    'LatentMaskingDiffusion', 'AutoencoderTrainer',
    'AutoencoderOptimWrapperConstructor'
]
