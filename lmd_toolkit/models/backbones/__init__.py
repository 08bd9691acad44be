from .lmd_vit import LMDViT

__all__ = ['LMDViT']
