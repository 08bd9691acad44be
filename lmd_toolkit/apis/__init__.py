"""Inference: load a trained LMD, reconstruct, inpaint, sample."""
from .inference import (init_model, input_size, load_images, reconstruct,
                        region_to_token_mask)
from .sampler import build_mask_scheduler, inpaint, masked_counts, sample

__all__ = [
    'init_model', 'reconstruct', 'inpaint', 'sample', 'load_images',
    'input_size', 'region_to_token_mask', 'build_mask_scheduler',
    'masked_counts'
]
