from ..lmd_vit import LMDViT
from .lmd_unet import LMDUNet

__all__ = ['LMDUNet', 'LMDViT']
