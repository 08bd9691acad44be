from .helpers import (check_latent, check_latent_grid, check_patch_values,
                      check_sign,
                      ids_from_mask,
                      init_transformer_weights, is_pretrained_cfg,
                      seeded_generators, to_2tuple, token_grid, unpatchify)
from .lmd_layers import (Attention, Block, Generators, Mlp, PatchEmbed,
                         build_2d_sincos_pos_embed, gather_tokens,
                         num_kept_tokens, patchify,
                         random_masking, run_blocks)

__all__ = [
    'Attention', 'Block', 'Generators', 'Mlp', 'PatchEmbed',
    'build_2d_sincos_pos_embed', 'gather_tokens', 'ids_from_mask',
    'init_transformer_weights', 'is_pretrained_cfg', 'num_kept_tokens',
    'patchify', 'random_masking', 'run_blocks', 'seeded_generators',
    'to_2tuple', 'unpatchify', 'check_latent', 'check_latent_grid',
    'token_grid', 'check_sign', 'check_patch_values'
]
