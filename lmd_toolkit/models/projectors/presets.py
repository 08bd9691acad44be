"""Architecture presets of the KL-VAE and VQ-GAN projectors.

A config is LDM's ``ddconfig`` (``ch``, ``ch_mult``, ``num_res_blocks``,
``z_channels``, ``resolution``, ``attn_resolutions`` ...) plus ``embed_dim``,
``n_embed`` (VQ only) and ``norm_groups`` (GroupNorm groups; 32 in every LDM
model, fewer only in the narrow ``tiny-*`` and ``micro-*`` presets).
``resolution`` is the nominal image size that ``attn_resolutions`` refers to:
attention sits in the levels whose feature map would be that large for a
``resolution``-sized input (the network itself runs on any size divisible by
the down-sampling factor).
"""
import copy
from typing import Dict, Union

_COMMON = dict(
    in_channels=3,
    out_ch=3,
    resolution=256,
    attn_resolutions=(),
    dropout=0.0,
    norm_groups=32)

#: KL-regularised autoencoders (LDM ``first_stage_models/kl-*``, SD v1 VAE).
KL_PRESETS: Dict[str, dict] = {
    # LDM kl-f8 == Stable Diffusion v1 VAE == the official LMD projector.
    'kl-f8':
    dict(ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2, z_channels=4,
         embed_dim=4),
    # LDM kl-f4.
    'kl-f4':
    dict(ch=128, ch_mult=(1, 2, 4), num_res_blocks=2, z_channels=3,
         embed_dim=3),
    # CPU demos: same topology as kl-f8, 1/8 width, one block per level.
    # GroupNorm with 4 groups keeps kl-f8's 4 channels per group in the
    # 16-wide top level: with 2 per group (8 groups), GroupNorm maps a flat
    # region to one sign per group, and flat colours come back wrong
    # (docs/en/stage1.md). Width 16 learns about as much per iteration as
    # 32 on the demo's crops at 2.6x less time per iteration.
    'tiny-f8':
    dict(ch=16, ch_mult=(1, 2, 2, 4), num_res_blocks=1, z_channels=4,
         embed_dim=4, norm_groups=4),
    # Unit tests: widths 8/16/32 need GroupNorm with 8 groups.
    'micro-f4':
    dict(ch=8, ch_mult=(1, 2, 4), num_res_blocks=1, z_channels=4,
         embed_dim=4, norm_groups=8),
}

#: Vector-quantised autoencoders (taming VQGAN / LDM ``vq-*``).
VQ_PRESETS: Dict[str, dict] = {
    # LDM vq-f8: attention in the 32x32 level.
    'vq-f8':
    dict(ch=128, ch_mult=(1, 2, 2, 4), num_res_blocks=2, z_channels=4,
         embed_dim=4, n_embed=16384, attn_resolutions=(32, )),
    'vq-f8-n256':
    dict(ch=128, ch_mult=(1, 2, 2, 4), num_res_blocks=2, z_channels=4,
         embed_dim=4, n_embed=256, attn_resolutions=(32, )),
    # LDM vq-f4: no attention outside the mid block.
    'vq-f4':
    dict(ch=128, ch_mult=(1, 2, 4), num_res_blocks=2, z_channels=3,
         embed_dim=3, n_embed=8192),
    # CPU demos: the KL tiny-f8 widths and groups, attention in the 32x32
    # level.
    'tiny-f8':
    dict(ch=16, ch_mult=(1, 2, 2, 4), num_res_blocks=1, z_channels=4,
         embed_dim=4, n_embed=1024, attn_resolutions=(32, ), norm_groups=4),
    'micro-f4':
    dict(ch=8, ch_mult=(1, 2, 4), num_res_blocks=1, z_channels=4,
         embed_dim=4, n_embed=64, resolution=32, attn_resolutions=(8, ),
         norm_groups=8),
}

_REQUIRED = ('ch', 'ch_mult', 'num_res_blocks', 'z_channels', 'embed_dim')
_FAMILIES = {'kl': KL_PRESETS, 'vq': VQ_PRESETS}
# LDM ddconfig keys that we accept and ignore (fixed in this architecture).
_IGNORED = {'double_z': None, 'resamp_with_conv': True, 'give_pre_end': False,
            'tanh_out': False, 'attn_type': 'vanilla'}


def resolve_config(family: str, preset: Union[str, dict]) -> dict:
    """Full architecture config from a preset name or a custom dict.

    Args:
        family (str): ``'kl'`` or ``'vq'``.
        preset (str | dict): A key of ``KL_PRESETS`` / ``VQ_PRESETS`` or a
            dict with at least ``ch, ch_mult, num_res_blocks, z_channels,
            embed_dim`` (and ``n_embed`` for VQ); LDM ``ddconfig`` dicts work
            (``double_z``, ``resamp_with_conv`` ... are accepted).

    Returns:
        dict: A new dict with every key filled.
    """
    presets = _FAMILIES[family]
    if isinstance(preset, str):
        if preset not in presets:
            raise KeyError(f'Unknown {family} projector preset {preset!r}; '
                           f'choose one of {sorted(presets)} or pass a dict.')
        preset = presets[preset]
    cfg = copy.deepcopy(_COMMON)
    required = _REQUIRED + (('n_embed', ) if family == 'vq' else ())
    allowed = set(cfg) | set(required) | set(_IGNORED)
    unknown = set(preset) - allowed
    if unknown:
        raise KeyError(f'{family} projector config: unknown keys '
                       f'{sorted(unknown)}; allowed: {sorted(allowed)}.')
    missing = set(required) - set(preset)
    if missing:
        raise KeyError(f'{family} projector config lacks {sorted(missing)}.')
    for key, value in preset.items():
        if key in _IGNORED:
            fixed = (family == 'kl') if key == 'double_z' else _IGNORED[key]
            if fixed is not None and value != fixed:
                raise ValueError(f'{family} projector config: {key}={value!r}'
                                 f' is not supported (only {fixed!r}).')
            continue
        cfg[key] = copy.deepcopy(value)
    cfg['ch_mult'] = tuple(cfg['ch_mult'])
    cfg['attn_resolutions'] = tuple(cfg['attn_resolutions'])
    return cfg


def all_presets() -> Dict[str, Dict[str, dict]]:
    """``{'kl': KL_PRESETS, 'vq': VQ_PRESETS}``."""
    return dict(_FAMILIES)
