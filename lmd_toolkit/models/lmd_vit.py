"""The LMD training forward: latent -> mask -> encoder -> decoder -> loss
(https://arxiv.org/abs/2312.07971 §3.2); layers in ``layers/lmd_layers.py``,
code off the training path in ``lmd_support.py``. ``B`` batch,
``d`` latent channels, ``p`` patch, ``L`` tokens, ``K`` kept, ``C`` width."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModel, BaseModule
from torch import Tensor

from lmd_toolkit.registry import MODELS
from .lmd_support import (DecoderInitMixin, HeadInferenceMixin,
                          LMDInferenceMixin, VIT_ARCHS, ViTInferenceMixin,
                          build_parts, check_arch)
from .layers import (Block, Generators, PatchEmbed, build_2d_sincos_pos_embed,
                     check_latent, check_latent_grid, check_patch_values,
                     check_sign, gather_tokens, patchify, random_masking,
                     run_blocks, to_2tuple, token_grid)


@MODELS.register_module()
class LMDViT(ViTInferenceMixin, BaseModule):
    """LMD encoder (§3.2.1): patch embed, + sin-cos position, random
    masking, class token, pre-norm blocks, LayerNorm.

    Args:
        arch (str | dict): 'tiny' .. 'huge' or a dict of ``embed_dims``,
            ``num_layers``, ``num_heads``. Defaults to 'base'.
        in_channels (int): Latent ``d`` (from the projector). Defaults to 4.
        latent_size (int | tuple): Latent ``h`` or ``(h, w)``. Defaults to 28.
        patch_size (int): Latent patch size ``p``. Defaults to 2.
        num_layers (int, optional): Overrides the arch depth. Defaults to None.
        mlp_ratio (float): MLP width / embed_dims. Defaults to 4.0.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        drop_path_rate (float): Last block's drop path. Defaults to 0.0.
        with_cls_token (bool): Prepend a class token. Defaults to True.
        fused_attn (bool): Use SDPA. Defaults to True.
        with_cp (bool): Activation checkpointing. Defaults to False.
        init_cfg (dict, optional): ``Pretrained`` weights. Defaults to None.
    """

    arch_zoo = VIT_ARCHS  # name -> embed_dims, num_layers, num_heads

    def __init__(self, arch: Union[str, dict] = 'base', in_channels: int = 4,
                 latent_size: Union[int, Sequence[int]] = 28,
                 patch_size: int = 2, num_layers: Optional[int] = None,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path_rate: float = 0.0, with_cls_token: bool = True,
                 fused_attn: bool = True, with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = check_arch(arch, self.arch_zoo)
        self.embed_dims, self.num_heads = arch['embed_dims'], arch['num_heads']
        self.num_layers = num_layers or arch['num_layers']
        self.in_channels, self.patch_size = in_channels, patch_size
        self.latent_size = to_2tuple(latent_size, 'LMDViT.latent_size')
        self.grid_size = check_latent_grid(self.latent_size, patch_size,
                                           'LMDViT')
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.with_cls_token, self.with_cp = with_cls_token, with_cp
        self.num_prefix = int(with_cls_token)
        C = self.embed_dims
        self.patch_embed = PatchEmbed(in_channels, C, patch_size)
        if with_cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_embed = nn.Parameter(build_2d_sincos_pos_embed(
            *self.grid_size, C, with_cls_token)[None], requires_grad=False)
        # rates as Python floats, so that a meta-device build works too
        dpr = torch.linspace(0, drop_path_rate, self.num_layers,
                             device='cpu').tolist()
        self.blocks = nn.ModuleList([
            Block(C, self.num_heads, mlp_ratio, qkv_bias, dpr[i], fused_attn)
            for i in range(self.num_layers)])
        self.norm = nn.LayerNorm(C, eps=1e-6)

    def embed(self, z: Tensor) -> Tensor:
        """Latent ``(B, d, h, w)`` -> patch tokens + position ``(B, L, C)``."""
        check_latent(z, self.in_channels, self.latent_size, 'LMDViT')
        return self.patch_embed(z) + self.pos_embed[:, self.num_prefix:]

    def encode(self, x: Tensor) -> Tensor:
        """Tokens ``(B, K, C)`` -> class token + blocks + norm ``(B, 1+K, C)``
        (``(B, K, C)`` without class token)."""
        if self.with_cls_token:
            cls = self.cls_token + self.pos_embed[:, :1]  # (1, 1, C)
            x = torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)
        return self.norm(run_blocks(self, self.blocks, x))

    def forward_masked(self, z: Tensor, mask_ratio: float,
                       generator: Optional[Generators] = None
                       ) -> Tuple[Tensor, Tensor, Tensor]:
        """Encode the visible tokens: ``x (B, 1+K, C)``, ``mask (B, L)`` (1 =
        removed), ``ids_restore (B, L)``; ``K = num_kept_tokens(L, r)``."""
        x = self.embed(z)  # (B, L, C)
        x, mask, ids_restore = random_masking(x, mask_ratio, generator)
        return self.encode(x), mask, ids_restore  # (B, 1+K, C)


@MODELS.register_module()
class LMDDecoder(DecoderInitMixin, BaseModule):
    """LMD decoder (§3.2.2): linear, mask tokens, unshuffle, position recall
    ``x + pos_embed_sign * pos``, blocks, norm, ``p*p*d`` values per token.
    The algorithm derives the first four args and ``with_cls_token``.

    Args:
        num_patches (int | tuple): Token grid: ``L`` (square) or ``(gh, gw)``.
        patch_size (int): Latent patch size ``p``.
        in_channels (int): Latent channels ``d``.
        embed_dims (int): Encoder width. Defaults to 768.
        decoder_embed_dims (int): Decoder width. Defaults to 512.
        decoder_depth (int): Decoder blocks. Defaults to 8.
        decoder_num_heads (int): Decoder heads. Defaults to 16.
        mlp_ratio (float): MLP width / decoder width. Defaults to 4.0.
        pos_embed_sign (float): -1.0 (LMD) or +1.0 (MAE). Defaults to -1.0.
        with_cls_token (bool): Encoder has a class token. Defaults to True.
        fused_attn (bool): Use SDPA. Defaults to True.
        with_cp (bool): Activation checkpointing. Defaults to False.
        init_cfg (dict, optional): ``Pretrained`` weights. Defaults to None.
    """

    def __init__(self, num_patches: Union[int, Sequence[int]],
                 patch_size: int, in_channels: int, embed_dims: int = 768,
                 decoder_embed_dims: int = 512, decoder_depth: int = 8,
                 decoder_num_heads: int = 16, mlp_ratio: float = 4.0,
                 pos_embed_sign: float = -1.0, with_cls_token: bool = True,
                 fused_attn: bool = True, with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.grid_size = token_grid(num_patches, 'LMDDecoder: num_patches')
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        check_sign(pos_embed_sign, 'LMDDecoder: pos_embed_sign')
        self.patch_size, self.in_channels = patch_size, in_channels
        self.embed_dims = embed_dims
        self.pos_embed_sign = float(pos_embed_sign)
        self.with_cls_token, self.with_cp = with_cls_token, with_cp
        self.num_prefix = int(with_cls_token)
        Cd = decoder_embed_dims
        self.decoder_embed = nn.Linear(embed_dims, Cd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, Cd))
        self.decoder_pos_embed = nn.Parameter(build_2d_sincos_pos_embed(
            *self.grid_size, Cd, with_cls_token)[None], requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            Block(Cd, decoder_num_heads, mlp_ratio, fused_attn=fused_attn)
            for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(Cd, eps=1e-6)
        self.decoder_pred = nn.Linear(Cd, patch_size**2 * in_channels)

    def forward(self, x: Tensor, ids_restore: Tensor) -> Tensor:
        """Encoder ``x (B, 1+K, C)``, ``ids_restore (B, L)`` -> ``(B, L,
        p*p*d)`` in token order (class token dropped)."""
        x = self.decoder_embed(x)  # (B, 1+K, Cd)
        B, _, Cd = x.shape
        prefix, x = x[:, :self.num_prefix], x[:, self.num_prefix:]
        removed = self.mask_token.expand(B, ids_restore.shape[1] - x.shape[1],
                                         -1)  # (B, L-K, Cd)
        x = gather_tokens(torch.cat([x, removed], dim=1), ids_restore)
        x = torch.cat([prefix, x], dim=1)  # (B, 1+L, Cd), token order
        x = x + self.pos_embed_sign * self.decoder_pos_embed
        x = run_blocks(self, self.decoder_blocks, x)
        x = self.decoder_pred(self.decoder_norm(x))  # (B, 1+L, p*p*d)
        return x[:, self.num_prefix:]


@MODELS.register_module()
class LatentReconstructionHead(HeadInferenceMixin, BaseModule):
    """MSE of predicted latent patches on the removed tokens (§3.2.3); with
    ``norm_target`` each target patch is normalised by its mean and UNBIASED
    variance (``p*p*d >= 2``), like MAE's ``norm_pix_loss``.

    Args:
        patch_size (int): ``p`` (the algorithm derives it).
        norm_target (bool): Normalise each target patch. Defaults to True.
        eps (float): Added to the variance. Defaults to 1e-6.
    """

    def __init__(self, patch_size: int, norm_target: bool = True,
                 eps: float = 1e-6) -> None:
        super().__init__()
        self.patch_size, self.norm_target = patch_size, norm_target
        self.eps = eps

    def patch_stats(self, target: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-patch mean and unbiased variance: ``(B, L, 1)`` each."""
        check_patch_values(target.shape[-1], 'LatentReconstructionHead')
        return target.mean(-1, keepdim=True), target.var(-1, keepdim=True)

    def construct_target(self, z: Tensor) -> Tensor:
        """Latent ``(B, d, h, w)`` -> target ``(B, L, p*p*d)``."""
        target = patchify(z, self.patch_size)
        if not self.norm_target:
            return target
        mean, var = self.patch_stats(target)
        return (target - mean) / (var + self.eps)**0.5

    def loss(self, pred: Tensor, z: Tensor, mask: Tensor) -> Tensor:
        """``pred (B, L, p*p*d)``, latent ``z``, ``mask (B, L)`` -> scalar
        ``sum(per-token MSE * mask) / sum(mask)``."""
        target = self.construct_target(z)  # (B, L, p*p*d)
        if pred.shape != target.shape:
            raise ValueError(f'LatentReconstructionHead: pred {pred.shape} '
                             f'!= target {target.shape}; patch_size '
                             f'{self.patch_size}')
        per_token = ((pred - target)**2).mean(dim=-1)  # (B, L)
        # clamp: at mask ratio 0 nothing is scored and the loss is 0
        return (per_token * mask).sum() / mask.sum().clamp(min=1)


@MODELS.register_module()
class LatentMaskingDiffusion(LMDInferenceMixin, BaseModel):
    """LMD: masked reconstruction of a frozen projector's latent.

    `Paper <https://arxiv.org/abs/2312.07971>`_. The backbone encodes, the
    neck predicts, the head scores; the neck's and head's shapes are derived
    from the projector and backbone (a contradicting config number raises).

    Args:
        projector (dict): The frozen projector (a ``BaseProjector``).
        backbone (dict): The encoder, e.g. ``LMDViT``.
        neck (dict): The decoder, e.g. ``LMDDecoder``.
        head (dict): The loss head, ``LatentReconstructionHead``.
        mask_ratio (float): Training ratio, set by ``MaskRatioSchedulerHook``
            every iteration (configs need not state it). Defaults to 0.75.
        eval_mask_ratio (float): Ratio of ``predict``. Defaults to 0.5.
        eval_seed (int): Seed of the ``predict`` masks. Defaults to 0.
        data_preprocessor (dict, optional): Defaults to LMDDataPreprocessor.
        init_cfg (dict, optional): ``Pretrained`` weights. Defaults to None.
    """

    def __init__(self, projector: dict, backbone: dict, neck: dict,
                 head: dict, mask_ratio: float = 0.75,
                 eval_mask_ratio: float = 0.5, eval_seed: int = 0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        pre = data_preprocessor or dict(type='LMDDataPreprocessor')
        super().__init__(data_preprocessor=MODELS.build(pre) if isinstance(
            pre, dict) else pre, init_cfg=init_cfg)
        self.projector = MODELS.build(projector).freeze()
        # backbone.in_channels, then the neck's and head's shapes, derived
        self.backbone, self.neck, self.head = build_parts(
            self.projector, backbone, neck, head)
        self.mask_ratio, self.eval_mask_ratio = mask_ratio, eval_mask_ratio
        self.eval_seed = eval_seed
        self._verified_sources = set()  # latent caches checked already

    def to_latent(self, inputs: Tensor,
                  data_samples: Optional[list] = None) -> Tensor:
        """Images ``(B, 3, H, W)`` -> latent ``(B, d, h, w)`` (or cached)."""
        if self.is_latent_batch(data_samples):
            return self.check_cached_latent(inputs, data_samples)
        return self.check_latent_size(self.projector.encode(inputs), inputs)

    def loss(self, inputs: Tensor,
             data_samples: Optional[list] = None) -> Dict[str, Tensor]:
        """Masked latent reconstruction loss at ``self.mask_ratio``."""
        z = self.to_latent(inputs, data_samples)  # (B, d, h, w)
        pred, mask = self.predict_masked(z, self.mask_ratio)
        return dict(loss=self.head.loss(pred, z, mask))

    def predict_masked(self, z: Tensor, mask_ratio: float, generator:
                       Optional[Generators] = None) -> Tuple[Tensor, Tensor]:
        """Mask, encode, decode: ``pred (B, L, p*p*d)``, ``mask (B, L)``."""
        x, mask, ids_restore = self.backbone.forward_masked(
            z, mask_ratio, generator)  # (B, 1+K, C)
        return self.neck(x, ids_restore), mask

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor'
                ) -> Union[Dict[str, Tensor], Tuple[Tensor, Tensor],
                           List[dict]]:
        """'loss': ``dict(loss)``; 'tensor': ``(pred, mask)``; 'predict'."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            return self.predict_masked(self.to_latent(inputs, data_samples),
                                       self.mask_ratio)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'LatentMaskingDiffusion: mode must be "loss", '
                         f'"tensor" or "predict", got {mode!r}.')
