"""Reference reconstructions that a trained model must beat."""
from torch import Tensor

from lmd_toolkit.models.layers import patchify, unpatchify


def mean_latent_baseline(z: Tensor, mask: Tensor, patch_size: int) -> Tensor:
    """Fill every masked patch with the mean latent of the image's visible
    patches (per channel); visible patches stay as they are.

    Args:
        z (Tensor): Latents ``(B, d, h, w)``.
        mask (Tensor): ``(B, L)``, 1 = removed.
        patch_size (int): Latent patch size ``p``.

    Returns:
        Tensor: The baseline latent ``(B, d, h, w)``.
    """
    d = z.shape[1]
    tokens = patchify(z, patch_size)  # (B, L, p*p*d), channel last
    values = tokens.unflatten(-1, (-1, d))  # (B, L, p*p, d)
    visible = (1 - mask.to(z.dtype))[..., None, None]  # (B, L, 1, 1)
    # latent positions per image that are visible: tokens * p * p
    count = (visible.sum(dim=(1, 2)) * values.shape[2]).clamp(min=1)  # (B, 1)
    mean = (values * visible).sum(dim=(1, 2)) / count  # (B, d)
    filled = values * visible + mean[:, None, None, :] * (1 - visible)
    return unpatchify(filled.flatten(-2), patch_size, z.shape[2], z.shape[3])
