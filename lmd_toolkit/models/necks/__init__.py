from ..lmd_vit import LMDDecoder
from .lmd_unet_decoder import LMDUNetDecoder

__all__ = ['LMDDecoder', 'LMDUNetDecoder']
