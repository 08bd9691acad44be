"""The LMD latent decoder (paper §3.2.2)."""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as checkpoint
from mmengine.model import BaseModule
from torch import Tensor

from lmd_toolkit.registry import MODELS
from ..layers import (Block, build_2d_sincos_pos_embed,
                      init_transformer_weights, is_pretrained_cfg)


@MODELS.register_module()
class LMDDecoder(BaseModule):
    """Latent decoder of LMD: predicts every latent patch from visible tokens.

    Paper: `LMD <https://arxiv.org/abs/2312.07971>`_ §3.2.2. Latent linear
    layer (encoder width -> decoder width) -> append mask tokens and unshuffle
    -> spatial position recall (``x + pos_embed_sign * decoder_pos_embed``;
    the official LMD code subtracts) -> pre-norm blocks -> LayerNorm ->
    linear prediction of ``p * p * d`` values per token.

    Args:
        num_patches (int | tuple): Token grid: an int ``L`` for a square grid
            (``sqrt(L) x sqrt(L)``), or ``(gh, gw)`` for a non-square one.
        patch_size (int): Latent patch size ``p``.
        in_channels (int): Latent channels ``d``; each token predicts
            ``p * p * d`` values.
        embed_dims (int): Width of the encoder tokens. Defaults to 768.
        decoder_embed_dims (int): Decoder width (output of the latent linear
            layer). Defaults to 512.
        decoder_depth (int): Number of decoder blocks. Defaults to 8.
        decoder_num_heads (int): Decoder attention heads. Defaults to 16.
        mlp_ratio (float): MLP hidden width / decoder width. Defaults to 4.0.
        pos_embed_sign (float): -1.0 subtracts the decoder position embedding
            (official LMD "spatial position recall"); +1.0 adds it (MAE).
            Defaults to -1.0.
        with_cls_token (bool): The encoder output starts with a class token
            (kept through the blocks, dropped from the output).
            Defaults to True.
        fused_attn (bool): Use ``F.scaled_dot_product_attention``.
            Defaults to True.
        with_cp (bool): Activation checkpointing of the decoder blocks, as
            ``LMDViT.with_cp``: in training with gradients on, each block
            runs under ``torch.utils.checkpoint.checkpoint`` (non-reentrant)
            and is recomputed in backward. Defaults to False.
        init_cfg (dict, optional): ``dict(type='Pretrained', ...)`` to load
            weights; otherwise initialised in code. Defaults to None.
    """

    def __init__(self,
                 num_patches: Union[int, Sequence[int]],
                 patch_size: int,
                 in_channels: int,
                 embed_dims: int = 768,
                 decoder_embed_dims: int = 512,
                 decoder_depth: int = 8,
                 decoder_num_heads: int = 16,
                 mlp_ratio: float = 4.0,
                 pos_embed_sign: float = -1.0,
                 with_cls_token: bool = True,
                 fused_attn: bool = True,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        if isinstance(num_patches, int):
            side = int(round(num_patches**0.5))
            if side * side != num_patches:
                raise ValueError(
                    f'LMDDecoder: num_patches={num_patches} is not a square; '
                    f'pass the grid as num_patches=(gh, gw).')
            self.grid_size = (side, side)
        else:
            self.grid_size = (int(num_patches[0]), int(num_patches[1]))
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        if pos_embed_sign not in (-1.0, 1.0):
            raise ValueError(f'LMDDecoder: pos_embed_sign must be -1.0 (LMD) '
                             f'or 1.0 (MAE), got {pos_embed_sign!r}.')
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.pos_embed_sign = float(pos_embed_sign)
        self.with_cls_token = with_cls_token
        self.num_prefix = 1 if with_cls_token else 0

        self.decoder_embed = nn.Linear(embed_dims, decoder_embed_dims)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dims))
        self.decoder_pos_embed = nn.Parameter(
            build_2d_sincos_pos_embed(*self.grid_size,
                                      decoder_embed_dims,
                                      cls_token=with_cls_token)[None],
            requires_grad=False)  # (1, prefix + L, Cd)
        self.decoder_blocks = nn.ModuleList([
            Block(decoder_embed_dims,
                  decoder_num_heads,
                  mlp_ratio,
                  fused_attn=fused_attn) for _ in range(decoder_depth)
        ])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dims, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_embed_dims,
                                      patch_size * patch_size * in_channels)

    def init_weights(self) -> None:
        """Initialise in code, unless ``init_cfg`` loads a checkpoint."""
        super().init_weights()
        if is_pretrained_cfg(self.init_cfg):
            return
        init_transformer_weights(self)
        nn.init.normal_(self.mask_token, std=0.02)
        self.decoder_pos_embed.data.copy_(
            build_2d_sincos_pos_embed(*self.grid_size,
                                      self.decoder_pos_embed.shape[-1],
                                      self.with_cls_token)[None])

    def forward(self, x: Tensor, ids_restore: Tensor) -> Tensor:
        """Predict all latent patches.

        Args:
            x (Tensor): Encoder output ``(B, 1 + K, C)`` (``(B, K, C)``
                without class token) from ``LMDViT.forward_masked``.
            ids_restore (Tensor): ``(B, L)`` from the same call.

        Returns:
            Tensor: Predictions ``(B, L, p * p * d)`` in the original token
            order (class token removed).
        """
        x = self.decoder_embed(x)  # (B, prefix + K, Cd)
        B, _, Cd = x.shape
        prefix, x = x[:, :self.num_prefix], x[:, self.num_prefix:]
        num_masked = ids_restore.shape[1] - x.shape[1]
        x = torch.cat([x, self.mask_token.expand(B, num_masked, -1)], dim=1)
        x = torch.gather(x, 1, ids_restore[..., None].expand(-1, -1, Cd))
        x = torch.cat([prefix, x], dim=1)  # (B, prefix + L, Cd)
        x = x + self.pos_embed_sign * self.decoder_pos_embed
        recompute = self.with_cp and self.training and torch.is_grad_enabled()
        for block in self.decoder_blocks:
            if recompute:  # keep only x; rerun the block in backward
                x = checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        x = self.decoder_pred(self.decoder_norm(x))  # (B, prefix + L, ppd)
        return x[:, self.num_prefix:]
