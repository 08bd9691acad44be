from .attention import Attention, Block, Mlp
from .helpers import to_2tuple
from .masking import random_masking
from .patch_embed import PatchEmbed
from .patchify import patchify, unpatchify
from .pos_embed import build_2d_sincos_pos_embed
from .weight_init import init_transformer_weights, is_pretrained_cfg

__all__ = [
    'Attention', 'Block', 'Mlp', 'PatchEmbed', 'build_2d_sincos_pos_embed',
    'init_transformer_weights', 'is_pretrained_cfg', 'patchify',
    'random_masking', 'to_2tuple', 'unpatchify'
]
