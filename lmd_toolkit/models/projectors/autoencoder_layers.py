"""Encoder / Decoder of the LDM / taming first-stage autoencoders.

Plain modules (not registered) shared by :class:`KLVAEProjector` and
:class:`VQGANProjector`. Module and parameter names follow the LDM / taming /
Stable Diffusion checkpoints (``down.{i}.block.{j}``, ``mid.attn_1``,
``nin_shortcut``, ``norm_out`` ...) so that official weights load as-is; the
key lists are in ``tests/test_models/test_projectors/data/``.

Conventions (as LDM): GroupNorm with eps 1e-6 (32 groups unless a tiny preset
says otherwise), swish (SiLU) activation, 3x3 convolutions, single-head
spatial self-attention with 1x1-conv projections, down-sampling by a stride-2
conv after an asymmetric zero pad (right and bottom by one pixel), nearest
up-sampling followed by a 3x3 conv.
"""
from typing import Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def group_norm(channels: int, num_groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with LDM's eps; ``channels`` must divide by ``num_groups``."""
    if channels % num_groups:
        raise ValueError(f'GroupNorm: {channels} channels do not divide into '
                         f'{num_groups} groups; pick ch / norm_groups so that '
                         'every width ch * ch_mult[i] is a multiple.')
    return nn.GroupNorm(num_groups, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """norm -> swish -> conv -> norm -> swish -> dropout -> conv, + shortcut.

    The shortcut is a 1x1 conv ``nin_shortcut`` when the width changes.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 dropout: float = 0.0,
                 num_groups: int = 32) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels, num_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels, num_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)
        else:
            self.nin_shortcut = None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the ``h * w`` positions, residual."""

    def __init__(self, channels: int, num_groups: int = 32) -> None:
        super().__init__()
        self.norm = group_norm(channels, num_groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        # (B, C, h, w) -> (B, 1 head, h*w, C)
        q, k, v = (proj(y).flatten(2).transpose(1, 2).unsqueeze(1)
                   for proj in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v)  # scale C ** -0.5
        y = y.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(y)


class Downsample(nn.Module):
    """Halve the resolution: pad right / bottom by 1, 3x3 conv stride 2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode='constant', value=0.0))


class Upsample(nn.Module):
    """Double the resolution: nearest interpolation, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode='nearest'))


class _Level(nn.Module):
    """One resolution level: ``block`` (ResnetBlocks), ``attn`` and an
    optional ``downsample`` / ``upsample`` (names as in LDM)."""


class _Mid(nn.Module):
    """The bottleneck: ``block_1`` -> ``attn_1`` -> ``block_2``."""

    def __init__(self, channels: int, dropout: float, num_groups: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout, num_groups)
        self.attn_1 = AttnBlock(channels, num_groups)
        self.block_2 = ResnetBlock(channels, channels, dropout, num_groups)

    def forward(self, x: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    """Image ``(B, in_channels, H, W)`` -> ``(B, z or 2z, H/f, W/f)`` with
    ``f = 2 ** (len(ch_mult) - 1)``.

    Attention follows every ResnetBlock of a level whose input resolution
    (relative to the nominal ``resolution``) is in ``attn_resolutions``.
    """

    def __init__(self,
                 ch: int,
                 ch_mult: Sequence[int],
                 num_res_blocks: int,
                 z_channels: int,
                 double_z: bool = True,
                 in_channels: int = 3,
                 resolution: int = 256,
                 attn_resolutions: Sequence[int] = (),
                 dropout: float = 0.0,
                 num_groups: int = 32) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        widths = [ch] + [ch * m for m in ch_mult]
        res = resolution
        block_in = ch
        for i in range(len(ch_mult)):
            level = _Level()
            block_out = widths[i + 1]
            level.block = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(num_res_blocks):
                level.block.append(
                    ResnetBlock(block_in, block_out, dropout, num_groups))
                block_in = block_out
                if res in attn_resolutions:
                    level.attn.append(AttnBlock(block_in, num_groups))
            if i != len(ch_mult) - 1:
                level.downsample = Downsample(block_in)
                res //= 2
            self.down.append(level)
        self.mid = _Mid(block_in, dropout, num_groups)
        self.norm_out = group_norm(block_in, num_groups)
        out = 2 * z_channels if double_z else z_channels
        self.conv_out = nn.Conv2d(block_in, out, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
            if hasattr(level, 'downsample'):
                h = level.downsample(h)  # (B, C, H, W) -> (B, C, H/2, W/2)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """Latent ``(B, z_channels, h, w)`` -> image ``(B, out_ch, h*f, w*f)``.

    Levels are stored in encoder order (``up.0`` is the full-resolution level,
    run last) with ``num_res_blocks + 1`` ResnetBlocks each, as LDM.
    """

    def __init__(self,
                 ch: int,
                 ch_mult: Sequence[int],
                 num_res_blocks: int,
                 z_channels: int,
                 out_ch: int = 3,
                 resolution: int = 256,
                 attn_resolutions: Sequence[int] = (),
                 dropout: float = 0.0,
                 num_groups: int = 32) -> None:
        super().__init__()
        num_levels = len(ch_mult)
        block_in = ch * ch_mult[-1]
        res = resolution // 2**(num_levels - 1)
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = _Mid(block_in, dropout, num_groups)
        levels = []
        for i in reversed(range(num_levels)):
            level = _Level()
            block_out = ch * ch_mult[i]
            level.block = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                level.block.append(
                    ResnetBlock(block_in, block_out, dropout, num_groups))
                block_in = block_out
                if res in attn_resolutions:
                    level.attn.append(AttnBlock(block_in, num_groups))
            if i != 0:
                level.upsample = Upsample(block_in)
                res *= 2
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out = group_norm(block_in, num_groups)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
            if hasattr(level, 'upsample'):
                h = level.upsample(h)  # (B, C, h, w) -> (B, C, 2h, 2w)
        return self.conv_out(F.silu(self.norm_out(h)))


def build_encoder_decoder(arch: dict,
                          double_z: bool) -> Tuple[Encoder, Decoder]:
    """The Encoder and Decoder of a resolved preset config (``presets.py``),
    built in this order; ``double_z`` for the KL-VAE (mean and log-variance).
    """
    net = dict(
        ch=arch['ch'],
        ch_mult=arch['ch_mult'],
        num_res_blocks=arch['num_res_blocks'],
        z_channels=arch['z_channels'],
        resolution=arch['resolution'],
        attn_resolutions=arch['attn_resolutions'],
        dropout=arch['dropout'],
        num_groups=arch['norm_groups'])
    encoder = Encoder(in_channels=arch['in_channels'], double_z=double_z,
                      **net)
    return encoder, Decoder(out_ch=arch['out_ch'], **net)


__all__ = [
    'AttnBlock', 'Decoder', 'Downsample', 'Encoder', 'ResnetBlock', 'Upsample',
    'build_encoder_decoder', 'group_norm'
]
