from .lmd_unet import LMDUNet
from .lmd_vit import LMDViT

__all__ = ['LMDUNet', 'LMDViT']
