"""Fixed 2-D sine-cosine position embedding (ViT / MAE formulation)."""
import torch
from torch import Tensor


def _sincos_1d(dim: int, pos: Tensor, temperature: float) -> Tensor:
    """``pos`` (M,) -> (M, dim): [sin(pos * w_k), cos(pos * w_k)] with
    ``w_k = temperature ** (-k / (dim / 2))``, ``k = 0 .. dim/2 - 1``."""
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / temperature**omega  # (dim/2,)
    angles = pos.double()[:, None] * omega[None, :]  # (M, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # (M, dim)


def build_2d_sincos_pos_embed(grid_h: int,
                              grid_w: int,
                              dim: int,
                              cls_token: bool = False,
                              temperature: float = 10000.0) -> Tensor:
    """Build the fixed 2-D sin-cos table for a ``grid_h x grid_w`` token grid.

    Tokens are in row-major order (index ``i * grid_w + j`` for row ``i``,
    column ``j``), as produced by a patch-embedding conv followed by
    ``flatten(2)``. Half of the channels encode one axis: the first
    ``dim / 2`` channels encode the column ``j``, the last ``dim / 2`` the
    row ``i`` (the MAE ordering); each half is ``[sin, cos]`` of the
    position times ``temperature ** (-k / (dim / 4))``.

    Args:
        grid_h (int): Rows of the token grid.
        grid_w (int): Columns of the token grid.
        dim (int): Embedding width; must be divisible by 4.
        cls_token (bool): Prepend an all-zero row for a class token.
            Defaults to False.
        temperature (float): Frequency base. Defaults to 10000.

    Returns:
        Tensor: ``(grid_h * grid_w, dim)``, or ``(1 + grid_h * grid_w, dim)``
        with ``cls_token``; float32.
    """
    if dim % 4 != 0:
        raise ValueError(f'build_2d_sincos_pos_embed: dim must be divisible '
                         f'by 4 (2 axes x sin/cos), got dim={dim}.')
    rows = torch.arange(grid_h).repeat_interleave(grid_w)  # (L,) i
    cols = torch.arange(grid_w).repeat(grid_h)  # (L,) j
    emb = torch.cat([
        _sincos_1d(dim // 2, cols, temperature),
        _sincos_1d(dim // 2, rows, temperature)
    ],
                    dim=1)  # (L, dim)
    if cls_token:
        emb = torch.cat([emb.new_zeros(1, dim), emb], dim=0)  # (1 + L, dim)
    return emb.float()
