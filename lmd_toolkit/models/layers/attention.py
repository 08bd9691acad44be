"""Multi-head self-attention, MLP and the pre-norm transformer block.

Plain modules (not registered), in the style of ``timm.layers``. ``B`` is the
batch size, ``N`` the number of tokens and ``C`` the channel width.
"""
from typing import Optional, Type

import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath
from torch import Tensor


class Attention(nn.Module):
    """Multi-head self-attention.

    Args:
        dim (int): Token width ``C``; must be divisible by ``num_heads``.
        num_heads (int): Number of attention heads.
        qkv_bias (bool): Add a bias to the query/key/value projection.
            Defaults to True.
        fused_attn (bool): Use ``F.scaled_dot_product_attention``; False
            runs the explicit softmax(QK^T / sqrt(d)) V reference path.
            Defaults to True.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 fused_attn: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'Attention: dim ({dim}) must be divisible by '
                             f'num_heads ({num_heads}).')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, heads, N, hd)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)  # (B, heads, N, N)
            x = attn.softmax(dim=-1) @ v  # (B, heads, N, hd)
        x = x.transpose(1, 2).reshape(B, N, C)  # (B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    """Two-layer feed-forward network with a GELU in between.

    Args:
        in_features (int): Input and output width ``C``.
        hidden_features (int): Hidden width.
        act_layer (type): Activation class. Defaults to ``nn.GELU``.
    """

    def __init__(self,
                 in_features: int,
                 hidden_features: int,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))  # (B, N, hidden) -> (B, N, C)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)).

    Args:
        dim (int): Token width ``C``.
        num_heads (int): Number of attention heads.
        mlp_ratio (float): Hidden width of the MLP relative to ``dim``.
            Defaults to 4.0.
        qkv_bias (bool): Bias in the query/key/value projection.
            Defaults to True.
        drop_path (float): Stochastic-depth rate of both residual branches.
            Defaults to 0.0.
        fused_attn (bool): See :class:`Attention`. Defaults to True.
        norm_eps (float, optional): LayerNorm epsilon. Defaults to 1e-6.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 drop_path: float = 0.0,
                 fused_attn: bool = True,
                 norm_eps: Optional[float] = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, fused_attn)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(
            drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x
