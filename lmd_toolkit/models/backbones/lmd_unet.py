"""The "w/o MAE" ablation (paper Table 5): a convolutional U-Net that sees
the whole latent, masked patches replaced by a learned mask embedding. The
backbone encodes (features ``(B, c, h, w)``); ``LMDUNetDecoder`` predicts."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from lmd_toolkit.registry import MODELS
from ..layers import (Generators, is_pretrained_cfg, patchify,
                      random_masking, to_2tuple, unpatchify)
from ..projectors.autoencoder_layers import (AttnBlock, Downsample,
                                             ResnetBlock, Upsample)


@MODELS.register_module()
class LMDUNet(BaseModule):
    """U-Net on the masked latent, the "w/o MAE" ablation of LMD.

    Paper: `LMD: Faster Image Reconstruction with Latent Masking Diffusion
    <https://arxiv.org/abs/2312.07971>`_ (Table 5). Instead of encoding only
    the visible tokens, every masked ``p x p`` latent patch is overwritten by
    a learned mask embedding ``(p, p, d)`` and the full latent goes through
    a U-Net (ResNet blocks, stride-2 downsampling, skip connections,
    self-attention at the bottleneck). There is no timestep input: like LMD
    it reconstructs in one step. It keeps the backbone contract of
    ``LMDViT``: ``forward_masked`` returns features, the same mask and
    ``ids_restore`` for the same generator; the neck ``LMDUNetDecoder``
    (output norm and conv) turns the features ``(B, c, h, w)`` into the
    prediction ``(B, L, p*p*d)`` and the same ``LatentReconstructionHead``
    scores the masked patches only. Checkpoints written before the split
    (``backbone.norm_out`` / ``backbone.conv_out``) load: the algorithm
    renames the keys listed in ``moved_to_neck``.

    Args:
        in_channels (int): Latent channels ``d``. Defaults to 4.
        latent_size (int | tuple): Latent grid ``h`` (square) or ``(h, w)``.
            Defaults to 32.
        patch_size (int): Mask granularity ``p`` (and the token size of the
            prediction). Defaults to 2.
        base_channels (int): Width of the first level. Defaults to 64.
        channel_mults (Sequence[int]): Width multiplier per level; the
            resolution halves between levels. Defaults to (1, 2, 2).
        num_res_blocks (int): ResNet blocks per level on the way down (one
            more on the way up, as in DDPM / LDM). Defaults to 2.
        mid_attention (bool): Self-attention between the two bottleneck
            blocks. Defaults to True.
        norm_groups (int): GroupNorm groups; every width must divide by it.
            Defaults to 8.
        dropout (float): Dropout inside the ResNet blocks. Defaults to 0.0.
        init_cfg (dict, optional): ``dict(type='Pretrained', ...)`` to load
            weights. Defaults to None.
    """

    with_cls_token = False
    # parameters that moved to the neck (LMDUNetDecoder); old keys renamed
    moved_to_neck = ('norm_out', 'conv_out')

    def __init__(self,
                 in_channels: int = 4,
                 latent_size: Union[int, Sequence[int]] = 32,
                 patch_size: int = 2,
                 base_channels: int = 64,
                 channel_mults: Sequence[int] = (1, 2, 2),
                 num_res_blocks: int = 2,
                 mid_attention: bool = True,
                 norm_groups: int = 8,
                 dropout: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.latent_size = to_2tuple(latent_size, 'LMDUNet.latent_size')
        h, w = self.latent_size
        down = 2**(len(channel_mults) - 1)
        if h % patch_size or w % patch_size or h % down or w % down:
            raise ValueError(
                f'LMDUNet: latent_size {self.latent_size} must be divisible '
                f'by patch_size={patch_size} and by 2**(len(channel_mults)-1)'
                f'={down}; change latent_size, patch_size or channel_mults.')
        self.grid_size = (h // patch_size, w // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.norm_groups = norm_groups
        widths = [base_channels * m for m in channel_mults]
        # one learned value per position and channel of a patch, (p*p*d,)
        self.mask_embedding = nn.Parameter(
            torch.zeros(patch_size * patch_size * in_channels))

        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        skip_widths = [base_channels]
        c = base_channels
        for i, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(c, width, dropout, norm_groups))
                c = width
                skip_widths.append(c)
            self.down_blocks.append(blocks)
            last = i == len(widths) - 1
            self.downsamples.append(nn.Identity() if last else Downsample(c))
            if not last:
                skip_widths.append(c)
        self.mid_block_1 = ResnetBlock(c, c, dropout, norm_groups)
        self.mid_attn = (AttnBlock(c, norm_groups)
                         if mid_attention else nn.Identity())
        self.mid_block_2 = ResnetBlock(c, c, dropout, norm_groups)
        self.up_blocks = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for i, width in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                blocks.append(
                    ResnetBlock(c + skip_widths.pop(), width, dropout,
                                norm_groups))
                c = width
            self.up_blocks.append(blocks)
            self.upsamples.append(nn.Identity() if i == 0 else Upsample(c))
        self.embed_dims = c  # width of the output features

    def init_weights(self) -> None:
        """Default PyTorch conv init and a small random mask embedding,
        unless ``init_cfg`` loads a checkpoint."""
        super().init_weights()
        if is_pretrained_cfg(self.init_cfg):
            return
        nn.init.normal_(self.mask_embedding, std=0.02)

    def _check(self, z: Tensor) -> None:
        if z.ndim != 4 or z.shape[1] != self.in_channels or tuple(
                z.shape[2:]) != self.latent_size:
            raise ValueError(
                f'LMDUNet: expected a latent (B, {self.in_channels}, '
                f'*{self.latent_size}) (in_channels, latent_size), got '
                f'{tuple(z.shape)}.')

    def unet(self, z: Tensor) -> Tensor:
        """The U-Net alone: latent ``(B, d, h, w)`` -> features ``(B, c, h,
        w)`` (before the neck's output norm and conv)."""
        x = self.conv_in(z)  # (B, c0, h, w)
        skips: List[Tensor] = [x]
        for blocks, downsample in zip(self.down_blocks, self.downsamples):
            for block in blocks:
                x = block(x)
                skips.append(x)
            if not isinstance(downsample, nn.Identity):
                x = downsample(x)  # (B, c, h/2, w/2)
                skips.append(x)
        x = self.mid_block_2(self.mid_attn(self.mid_block_1(x)))
        for blocks, upsample in zip(self.up_blocks, self.upsamples):
            for block in blocks:
                x = block(torch.cat([x, skips.pop()], dim=1))
            x = upsample(x)
        return x  # (B, c, h, w)

    def forward_masked(
        self,
        z: Tensor,
        mask_ratio: float,
        generator: Optional[Generators] = None
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Mask random patches, fill them with the mask embedding, encode.

        Args:
            z (Tensor): Latent ``(B, d, h, w)``.
            mask_ratio (float): Fraction of patches masked, ``0 <= r < 1``.
            generator (torch.Generator | list, optional): For reproducible
                masks (the same generator gives the same mask as
                ``LMDViT``).

        Returns:
            tuple: ``x`` ``(B, c, h, w)``, the features of the whole
            latent; ``mask`` ``(B, L)``, 1 = masked; ``ids_restore``
            ``(B, L)``.
        """
        tokens = patchify(z, self.patch_size)  # (B, L, p*p*d)
        _, mask, ids_restore = random_masking(tokens, mask_ratio, generator)
        return self.forward_with_mask(z, mask)[0], mask, ids_restore

    def forward_with_mask(self, z: Tensor,
                          mask: Tensor) -> Tuple[Tensor, Tensor]:
        """Encode for a given mask (e.g. inpainting).

        Args:
            z (Tensor): Latent ``(B, d, h, w)``.
            mask (Tensor): ``(B, L)``, 1 = masked (any count per sample).

        Returns:
            tuple: features ``(B, c, h, w)`` and ``ids_restore (B, L)`` (the
            visible tokens first; the U-Net neck does not need it).
        """
        self._check(z)
        h, w = self.latent_size
        p = self.patch_size
        tokens = patchify(z, p)  # (B, L, p*p*d)
        m = mask[..., None].to(tokens.dtype)  # (B, L, 1)
        tokens = tokens * (1 - m) + self.mask_embedding.to(tokens.dtype) * m
        ids_restore = torch.argsort(
            torch.argsort(mask, dim=1, stable=True), dim=1)  # visible first
        return self.unet(unpatchify(tokens, p, h, w)), ids_restore

    def forward_features(self, z: Tensor) -> Tensor:
        """The U-Net on an unmasked latent: ``(B, d, h, w)`` ->
        features ``(B, c, h, w)``."""
        self._check(z)
        return self.unet(z)

    forward = forward_features
