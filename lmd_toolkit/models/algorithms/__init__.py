from .lmd import LatentMaskingDiffusion

__all__ = ['LatentMaskingDiffusion']
