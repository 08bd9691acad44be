from .patch_discriminator import NLayerDiscriminator

__all__ = ['NLayerDiscriminator']
