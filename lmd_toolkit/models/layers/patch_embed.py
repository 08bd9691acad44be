"""Patch embedding: a strided conv that turns a grid into tokens."""
import torch.nn as nn
from torch import Tensor


class PatchEmbed(nn.Module):
    """Non-overlapping ``p x p`` patches -> linear embedding, as a conv.

    Args:
        in_channels (int): Channels of the input grid (latent ``d``).
        embed_dims (int): Token width ``C``.
        patch_size (int): Kernel size and stride ``p``.
    """

    def __init__(self, in_channels: int, embed_dims: int,
                 patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels,
                              embed_dims,
                              kernel_size=patch_size,
                              stride=patch_size)

    def forward(self, z: Tensor) -> Tensor:
        x = self.proj(z)  # (B, C, h/p, w/p)
        return x.flatten(2).transpose(1, 2)  # (B, L, C)
