"""Downstream classification on latents (mmpretrain ``ImageClassifier``)."""
from .checkpoint import (extract_state_dict, load_encoder_state,
                         lmd_to_classifier)
from .latent_vit_backbone import LatentViTBackbone

__all__ = [
    'LatentViTBackbone', 'extract_state_dict', 'load_encoder_state',
    'lmd_to_classifier'
]
