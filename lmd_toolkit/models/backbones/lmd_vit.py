"""The LMD encoder: a ViT over the patchified latent (paper §3.2.1)."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as checkpoint
from mmengine.model import BaseModule
from torch import Tensor

from lmd_toolkit.registry import MODELS
from ..layers.masking import Generators
from ..layers import (Block, PatchEmbed, build_2d_sincos_pos_embed,
                      init_transformer_weights, is_pretrained_cfg,
                      random_masking, to_2tuple)


@MODELS.register_module()
class LMDViT(BaseModule):
    """Vision Transformer encoder of LMD on latent patches.

    Paper: `LMD: Faster Image Reconstruction with Latent Masking Diffusion
    <https://arxiv.org/abs/2312.07971>`_. Patch embed (Conv2d, kernel =
    stride = p) -> + fixed 2-D sin-cos position -> random masking -> prepend
    the class token -> pre-norm blocks -> LayerNorm.

    Args:
        arch (str | dict): 'tiny' (192, 12 layers, 3 heads), 'small'
            (384, 12, 6), 'base' (768, 12, 12), 'large' (1024, 24, 16),
            'huge' (1280, 32, 16) or a dict with keys ``embed_dims``,
            ``num_layers``, ``num_heads``. Defaults to 'base'.
        in_channels (int): Latent channels ``d``. Defaults to 4.
        latent_size (int | tuple): Latent grid ``h`` (square) or ``(h, w)``.
            Defaults to 28.
        patch_size (int): Latent patch size ``p``. Defaults to 2.
        num_layers (int, optional): Overrides the arch depth (the generative
            variant uses 8). Defaults to None.
        mlp_ratio (float): MLP hidden width / embed_dims. Defaults to 4.0.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        drop_path_rate (float): Stochastic depth, linearly increasing over
            the blocks up to this value. Defaults to 0.0.
        with_cls_token (bool): Prepend a learnable class token.
            Defaults to True.
        fused_attn (bool): Use ``F.scaled_dot_product_attention``.
            Defaults to True.
        with_cp (bool): Activation checkpointing: in training with
            gradients on, each block's forward runs under
            ``torch.utils.checkpoint.checkpoint`` (non-reentrant, RNG state
            preserved, so drop-path draws the same masks when recomputed);
            only the block inputs are kept for backward. Same result and
            gradients, less memory, one more block forward per step.
            Defaults to False.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            to load weights; otherwise weights are initialised in code.
            Defaults to None.
    """

    arch_zoo = {
        'tiny': dict(embed_dims=192, num_layers=12, num_heads=3),
        'small': dict(embed_dims=384, num_layers=12, num_heads=6),
        'base': dict(embed_dims=768, num_layers=12, num_heads=12),
        'large': dict(embed_dims=1024, num_layers=24, num_heads=16),
        'huge': dict(embed_dims=1280, num_layers=32, num_heads=16),
    }

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 in_channels: int = 4,
                 latent_size: Union[int, Sequence[int]] = 28,
                 patch_size: int = 2,
                 num_layers: Optional[int] = None,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 drop_path_rate: float = 0.0,
                 with_cls_token: bool = True,
                 fused_attn: bool = True,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        if isinstance(arch, str):
            if arch not in self.arch_zoo:
                raise KeyError(f'LMDViT: unknown arch {arch!r}; choose one of '
                               f'{sorted(self.arch_zoo)} or pass a dict.')
            arch = self.arch_zoo[arch]
        missing = {'embed_dims', 'num_layers', 'num_heads'} - set(arch)
        if missing:
            raise KeyError(f'LMDViT: arch dict lacks keys {sorted(missing)}.')
        self.embed_dims = arch['embed_dims']
        self.num_layers = num_layers if num_layers else arch['num_layers']
        self.num_heads = arch['num_heads']
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.latent_size = to_2tuple(latent_size, 'LMDViT.latent_size')
        h, w = self.latent_size
        if h % patch_size or w % patch_size:
            raise ValueError(
                f'LMDViT: latent_size {self.latent_size} must be divisible by '
                f'patch_size={patch_size} (latent_size = image size / '
                f'projector.downsample_factor).')
        self.grid_size = (h // patch_size, w // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.with_cls_token = with_cls_token
        self.num_prefix = 1 if with_cls_token else 0

        self.patch_embed = PatchEmbed(in_channels, self.embed_dims, patch_size)
        if with_cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        # Fixed table, filled now so it is right even without init_weights().
        self.pos_embed = nn.Parameter(
            build_2d_sincos_pos_embed(*self.grid_size,
                                      self.embed_dims,
                                      cls_token=with_cls_token)[None],
            requires_grad=False)  # (1, prefix + L, C)
        # On the CPU also under ``with torch.device('meta')`` (FSDP's
        # deferred init, parameter counts): the rates are Python floats.
        dpr = torch.linspace(0, drop_path_rate, self.num_layers,
                             device='cpu').tolist()
        self.blocks = nn.ModuleList([
            Block(self.embed_dims, self.num_heads, mlp_ratio, qkv_bias, dpr[i],
                  fused_attn) for i in range(self.num_layers)
        ])
        self.norm = nn.LayerNorm(self.embed_dims, eps=1e-6)

    def init_weights(self) -> None:
        """Initialise in code, unless ``init_cfg`` loads a checkpoint."""
        super().init_weights()
        if is_pretrained_cfg(self.init_cfg):
            return
        init_transformer_weights(self)
        if self.with_cls_token:
            nn.init.normal_(self.cls_token, std=0.02)
        self.pos_embed.data.copy_(
            build_2d_sincos_pos_embed(*self.grid_size, self.embed_dims,
                                      self.with_cls_token)[None])

    def _embed(self, z: Tensor) -> Tensor:
        """Latent ``(B, d, h, w)`` -> patch tokens + position ``(B, L, C)``."""
        if z.ndim != 4 or z.shape[1] != self.in_channels or tuple(
                z.shape[2:]) != self.latent_size:
            raise ValueError(
                f'LMDViT: expected a latent (B, {self.in_channels}, '
                f'{self.latent_size[0]}, {self.latent_size[1]}), got '
                f'{tuple(z.shape)}. Set backbone.in_channels to the '
                f'projector latent_channels and backbone.latent_size to '
                f'image size / projector.downsample_factor.')
        x = self.patch_embed(z)  # (B, L, C)
        return x + self.pos_embed[:, self.num_prefix:]

    def _prepend_cls(self, x: Tensor) -> Tensor:
        if not self.with_cls_token:
            return x
        cls = self.cls_token + self.pos_embed[:, :1]  # (1, 1, C)
        return torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)

    def _encode(self, x: Tensor) -> Tensor:
        recompute = self.with_cp and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            if recompute:  # keep only x; rerun the block in backward
                x = checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.norm(x)

    def forward_masked(
        self,
        z: Tensor,
        mask_ratio: float,
        generator: Optional[Generators] = None
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Encode only the visible tokens of a randomly masked latent.

        Args:
            z (Tensor): Latent ``(B, d, h, w)``.
            mask_ratio (float): Fraction of tokens removed, ``0 <= r < 1``.
            generator (torch.Generator | list, optional): For reproducible
                masks; one per sample makes masks independent of batching.

        Returns:
            tuple: ``x`` ``(B, 1 + K, C)`` (``(B, K, C)`` without class
            token), ``K = int(L * (1 - r))``; ``mask`` ``(B, L)``, 1 =
            removed; ``ids_restore`` ``(B, L)``.
        """
        x = self._embed(z)  # (B, L, C)
        x, mask, ids_restore = random_masking(x, mask_ratio, generator)
        x = self._prepend_cls(x)  # (B, 1 + K, C)
        return self._encode(x), mask, ids_restore

    def forward_features(self, z: Tensor) -> Tensor:
        """Encode all tokens (no masking), e.g. for a downstream classifier.

        Args:
            z (Tensor): Latent ``(B, d, h, w)``.

        Returns:
            Tensor: ``(B, 1 + L, C)`` (``(B, L, C)`` without class token).
        """
        return self._encode(self._prepend_cls(self._embed(z)))

    forward = forward_features
