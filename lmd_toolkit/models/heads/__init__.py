from .latent_recon_head import LatentReconstructionHead

__all__ = ['LatentReconstructionHead']
