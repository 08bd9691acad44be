from ..lmd_vit import LatentReconstructionHead

__all__ = ['LatentReconstructionHead']
