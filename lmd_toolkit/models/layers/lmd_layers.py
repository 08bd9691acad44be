"""Layers of the LMD encoder and decoder, in the order a latent meets them:
``B`` batch, ``d`` latent channels, ``p`` patch, ``L = (h/p)(w/p)`` tokens,
``K`` kept, ``C`` width. Toolkit convention: ``mask == 1`` = REMOVED token."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint
from timm.layers import DropPath
from torch import Tensor

from .helpers import uniform_noise

Generators = Union[torch.Generator, Sequence[torch.Generator]]


def patchify(z: Tensor, p: int) -> Tensor:
    """Latent ``(B, d, h, w)`` -> ``(B, L, p*p*d)``, row-major patches, each
    flattened as ``(p, p, d)``."""
    B, d, h, w = z.shape
    if h % p or w % p:
        raise ValueError(f'patchify: latent size (h={h}, w={w}) must be '
                         f'divisible by patch_size={p}.')
    x = z.reshape(B, d, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (h // p) * (w // p), p * p * d)  # (B, L, p*p*d)


class PatchEmbed(nn.Module):
    """``p x p`` patches -> tokens, a Conv2d with kernel = stride = ``p``."""

    def __init__(self, in_channels: int, embed_dims: int,
                 patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size)

    def forward(self, z: Tensor) -> Tensor:
        return self.proj(z).flatten(2).transpose(1, 2)  # (B, L, C)


def build_2d_sincos_pos_embed(grid_h: int, grid_w: int, dim: int,
                              cls_token: bool = False,
                              temperature: float = 1e4) -> Tensor:
    """Fixed sin-cos table ``(grid_h * grid_w, dim)`` (+ a zero first row with
    ``cls_token``), float32: ``dim/2`` channels ``[sin, cos](column * w_k)``,
    then the row; ``w_k = temperature ** (-k / (dim/4))``."""
    if dim % 4 != 0:
        raise ValueError(f'build_2d_sincos_pos_embed: dim must be divisible '
                         f'by 4 (2 axes x sin/cos), got dim={dim}.')
    omega = torch.arange(dim // 4, dtype=torch.float64) / (dim / 4.0)
    omega = 1.0 / temperature**omega  # (dim/4,)
    rows = torch.arange(grid_h).repeat_interleave(grid_w).double()  # (L,)
    cols = torch.arange(grid_w).repeat(grid_h).double()  # (L,)
    halves = [pos[:, None] * omega[None] for pos in (cols, rows)]
    emb = torch.cat([f(a) for a in halves for f in (torch.sin, torch.cos)],
                    dim=1)  # (L, dim)
    if cls_token:
        emb = torch.cat([emb.new_zeros(1, dim), emb], dim=0)  # (1 + L, dim)
    return emb.float()


def num_kept_tokens(num_tokens: int, mask_ratio: float) -> int:
    """Tokens left visible at ``mask_ratio``: ``int(L * (1 - r))``, the
    toolkit's one ratio -> count rule (removed: ``L - int(L * (1 - r))``)."""
    return int(num_tokens * (1 - mask_ratio))


def random_masking(x: Tensor, mask_ratio: float,
                   generator: Optional[Generators] = None
                   ) -> Tuple[Tensor, Tensor, Tensor]:
    """Keep ``K = num_kept_tokens(L, r)`` random tokens of ``x (B, L, C)``;
    ``generator``: one, or one per sample (masks independent of batching).
    Returns ``x_kept (B, K, C)``, ``mask (B, L)``, ``ids_restore (B, L)``."""
    B, L, C = x.shape
    ids_keep, mask, ids_restore = _draw_mask(B, L, mask_ratio, x.dtype,
                                             x.device, generator)
    return gather_tokens(x, ids_keep), mask, ids_restore


@torch.compiler.disable
def _draw_mask(B: int, L: int, mask_ratio: float, dtype: torch.dtype,
               device: torch.device, generator: Optional[Generators]
               ) -> Tuple[Tensor, Tensor, Tensor]:
    """Eager under ``torch.compile`` (ratio and ``K`` stay out of graphs);
    ``ids_keep (B, K)`` is marked dynamic in ``K``."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f'random_masking: mask_ratio must satisfy '
                         f'0 <= mask_ratio < 1, got {mask_ratio!r}.')
    noise = uniform_noise(B, L, device, generator)  # (B, L)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: first K kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # inverse permutation
    K = num_kept_tokens(L, mask_ratio)
    mask = torch.ones(B, L, device=device, dtype=dtype)
    mask[:, :K] = 0
    mask = torch.gather(mask, 1, ids_restore)  # (B, L), original order
    ids_keep = ids_shuffle[:, :K]  # (B, K)
    torch._dynamo.maybe_mark_dynamic(ids_keep, 1)
    return ids_keep, mask, ids_restore


def gather_tokens(x: Tensor, ids: Tensor) -> Tensor:
    """``x (B, L, C)``, ``ids (B, K)`` -> ``(B, K, C)``."""
    return torch.gather(x, 1, ids[..., None].expand(-1, -1, x.shape[-1]))


class Attention(nn.Module):
    """Multi-head self-attention; ``fused_attn=False``: reference path."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 fused_attn: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'Attention: dim ({dim}) must be divisible by '
                             f'num_heads ({num_heads}).')
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.scale, self.fused_attn = self.head_dim**-0.5, fused_attn
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, N, hd)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)  # (B, H, N, N)
            x = attn.softmax(dim=-1) @ v  # (B, H, N, hd)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))  # (B, N, C)


class Mlp(nn.Module):
    """``fc2(act(fc1(x)))``, hidden width ``hidden_features``."""

    def __init__(self, in_features: int, hidden_features: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))  # (B, N, C)


class Block(nn.Module):
    """Pre-norm: ``x + attn(norm1(x))``, ``x + mlp(norm2(x))``, drop path."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop_path: float = 0.0,
                 fused_attn: bool = True, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, fused_attn)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def run_blocks(module: nn.Module, blocks: nn.ModuleList, x: Tensor) -> Tensor:
    """Apply ``blocks``; ``module.with_cp`` in training with gradients runs
    each under activation checkpointing (same result, RNG preserved)."""
    cp = module.with_cp and module.training and torch.is_grad_enabled()
    for block in blocks:
        x = checkpoint.checkpoint(block, x, use_reentrant=False) if cp \
            else block(x)
    return x
