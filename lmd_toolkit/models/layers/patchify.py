"""Latent <-> token-sequence reshaping for patch-wise targets."""
from torch import Tensor


def patchify(z: Tensor, p: int) -> Tensor:
    """Cut a latent into non-overlapping ``p x p`` patches.

    Args:
        z (Tensor): Latent ``(B, d, h, w)``, any channel count ``d``.
        p (int): Patch size; must divide ``h`` and ``w``.

    Returns:
        Tensor: ``(B, L, p * p * d)`` with ``L = (h / p) * (w / p)`` in
        row-major patch order; each patch is flattened as ``(p, p, d)``.
    """
    B, d, h, w = z.shape
    if h % p or w % p:
        raise ValueError(f'patchify: latent size (h={h}, w={w}) must be '
                         f'divisible by patch_size={p}; resize the input or '
                         f'choose a patch size that divides both.')
    gh, gw = h // p, w // p
    x = z.reshape(B, d, gh, p, gw, p)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, p, p, d)
    return x.reshape(B, gh * gw, p * p * d)


def unpatchify(x: Tensor, p: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`patchify`.

    Args:
        x (Tensor): Patches ``(B, L, p * p * d)``.
        p (int): Patch size.
        h (int): Latent height; must be divisible by ``p``.
        w (int): Latent width; must be divisible by ``p``.

    Returns:
        Tensor: Latent ``(B, d, h, w)``.
    """
    B, L, D = x.shape
    if h % p or w % p:
        raise ValueError(f'unpatchify: latent size (h={h}, w={w}) must be '
                         f'divisible by patch_size={p}.')
    gh, gw = h // p, w // p
    if L != gh * gw or D % (p * p):
        raise ValueError(f'unpatchify: got tokens of shape (L={L}, D={D}); '
                         f'expected L = (h/p)*(w/p) = {gh * gw} and D a '
                         f'multiple of p*p = {p * p}.')
    d = D // (p * p)
    z = x.reshape(B, gh, gw, p, p, d)
    z = z.permute(0, 5, 1, 3, 2, 4)  # (B, d, gh, p, gw, p)
    return z.reshape(B, d, h, w)
