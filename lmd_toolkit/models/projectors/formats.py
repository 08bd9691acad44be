"""Checkpoint key layouts of the autoencoder projectors, as pure functions.

State dict in, state dict out: no file access, no model classes. The
projectors use LDM / taming names (``encoder.down.0.block.1.conv1.weight``);
these functions map the other layouts to them and back:

* LDM / taming ``model.ckpt`` (``{'state_dict': ...}`` with ``loss.*`` keys)
  and full Stable Diffusion checkpoints (``first_stage_model.`` prefix):
  :func:`unwrap_state_dict`, :func:`extract_first_stage`;
* a stage-1 ``AutoencoderTrainer`` checkpoint (``projector.`` prefix):
  :func:`extract_first_stage`;
* diffusers ``AutoencoderKL`` / ``VQModel``: :func:`diffusers_to_ldm`,
  :func:`ldm_to_diffusers`, :func:`diffusers_config`.

:func:`convert_to_ldm` chains them for any accepted checkpoint object.
Reading files and loading weights live in ``checkpoint.py``.
"""
import re
from typing import Dict, Optional, Tuple

from torch import Tensor

StateDict = Dict[str, Tensor]

#: Prefix of the autoencoder inside Stable Diffusion / LDM diffusion ckpts.
FIRST_STAGE_PREFIX = 'first_stage_model.'
#: Prefix of the autoencoder inside an ``AutoencoderTrainer`` checkpoint.
TRAINER_PREFIX = 'projector.'
#: Keys that only the stage-1 training loss owns.
LOSS_PREFIX = 'loss.'
_SHOW = 10  # top-level keys listed in the error of convert_to_ldm


def unwrap_state_dict(obj: dict) -> StateDict:
    """The tensors of ``obj['state_dict']`` (LDM / Lightning / mmengine) or
    of ``obj`` itself; non-tensor entries are dropped."""
    inner = obj.get('state_dict')
    if isinstance(inner, dict):
        obj = inner
    return {k: v for k, v in obj.items() if isinstance(v, Tensor)}


def extract_first_stage(
        state_dict: StateDict,
        prefix: Optional[str] = None) -> Tuple[StateDict, Dict[str, list]]:
    """Strip ``prefix`` (auto: ``first_stage_model.``, else ``projector.``
    when present), drop ``loss.*`` keys and keys outside the prefix.

    Returns:
        tuple: the autoencoder state dict and ``{'dropped_loss_keys': [...],
        'ignored_keys': [...]}``.
    """
    if prefix is None and any(
            k.startswith(FIRST_STAGE_PREFIX) for k in state_dict):
        prefix = FIRST_STAGE_PREFIX
    elif prefix is None and any(
            k.startswith(TRAINER_PREFIX + 'encoder.') for k in state_dict):
        prefix = TRAINER_PREFIX
    ignored = []
    if prefix:
        kept = {}
        for key, value in state_dict.items():
            if key.startswith(prefix):
                kept[key[len(prefix):]] = value
            else:
                ignored.append(key)
        state_dict = kept
    dropped = [k for k in state_dict if k.startswith(LOSS_PREFIX)]
    state_dict = {
        k: v
        for k, v in state_dict.items() if not k.startswith(LOSS_PREFIX)
    }
    return state_dict, dict(dropped_loss_keys=dropped, ignored_keys=ignored)


# ------------------------------------------------------- diffusers <-> LDM
#: ``(LDM prefix, diffusers prefix, is attention)`` of every renamed
#: sub-module, in matching order. Fields: ``{e}`` encoder / decoder, ``{i}``
#: a level, ``{j}`` a block, ``{r}`` a decoder level (diffusers counts
#: ``up_blocks`` from the lowest resolution: ``r -> n - 1 - r``), ``{m}`` a
#: mid-block ResnetBlock (LDM ``block_1/2`` = diffusers ``resnets.0/1``).
_LAYOUT = (
    ('encoder.down.{i}.block.{j}.', 'encoder.down_blocks.{i}.resnets.{j}.',
     False),
    ('encoder.down.{i}.attn.{j}.', 'encoder.down_blocks.{i}.attentions.{j}.',
     True),
    ('encoder.down.{i}.downsample.',
     'encoder.down_blocks.{i}.downsamplers.0.', False),
    ('decoder.up.{r}.block.{j}.', 'decoder.up_blocks.{r}.resnets.{j}.', False),
    ('decoder.up.{r}.attn.{j}.', 'decoder.up_blocks.{r}.attentions.{j}.',
     True),
    ('decoder.up.{r}.upsample.', 'decoder.up_blocks.{r}.upsamplers.0.',
     False),
    ('{e}.mid.block_{m}.', '{e}.mid_block.resnets.{m}.', False),
    ('{e}.mid.attn_1.', '{e}.mid_block.attentions.0.', True),
    ('{e}.norm_out.', '{e}.conv_norm_out.', False),
)
#: Regex of each field; ``m`` per side (LDM, diffusers).
_FIELDS = {'e': '(encoder|decoder)', 'i': r'(\d+)', 'j': r'(\d+)',
           'r': r'(\d+)'}
_MID = (r'([12])', r'([01])')
#: Attention leaf names: diffusers (current and < 0.14) -> LDM, LDM ->
#: current diffusers.
_DIFF_ATTN = {
    'group_norm': 'norm', 'to_q': 'q', 'to_k': 'k', 'to_v': 'v',
    'to_out.0': 'proj_out',
    'query': 'q', 'key': 'k', 'value': 'v', 'proj_attn': 'proj_out'
}
_LDM_ATTN = {
    'norm': 'group_norm', 'q': 'to_q', 'k': 'to_k', 'v': 'to_v',
    'proj_out': 'to_out.0'
}


def _compile(template: str, side: int) -> Tuple[re.Pattern, list]:
    """A template of :data:`_LAYOUT` -> (regex, its field names)."""
    names = re.findall(r'\{(\w)\}', template)
    pattern = re.escape(template)
    for name in names:
        regex = _MID[side] if name == 'm' else _FIELDS[name]
        pattern = pattern.replace(re.escape('{' + name + '}'), regex, 1)
    return re.compile(pattern), names


def _num_levels(state_dict: StateDict, pattern: str) -> int:
    found = [int(m.group(1)) for m in map(re.compile(pattern).match,
                                         state_dict) if m]
    return max(found) + 1 if found else 0


def _attn_leaf(leaf: str, table: Dict[str, str]) -> str:
    name, _, param = leaf.rpartition('.')
    if name not in table:
        return leaf  # unknown: kept, reported as unexpected on load
    return f'{table[name]}.{param}'


def _convert_layout(state_dict: StateDict, to_ldm: bool,
                    num_levels: int) -> StateDict:
    """Rename by :data:`_LAYOUT` (first matching prefix per key); rename the
    leaf of attention / resnet sub-modules; reshape attention projection
    weights between Linear ``[C, C]`` (diffusers) and 1x1 conv
    ``[C, C, 1, 1]`` (LDM)."""
    source, target = (1, 0) if to_ldm else (0, 1)
    rules = [(*_compile(entry[source], source), entry[target], entry[2])
             for entry in _LAYOUT]
    attn_names = _DIFF_ATTN if to_ldm else _LDM_ATTN
    shortcut = ('conv_shortcut.', 'nin_shortcut.') if to_ldm else (
        'nin_shortcut.', 'conv_shortcut.')
    mid_offset = 1 if to_ldm else -1
    out = {}
    for key, value in state_dict.items():
        new = key
        for pattern, names, template, is_attn in rules:
            m = pattern.match(key)
            if not m:
                continue
            fields = dict(zip(names, m.groups()))
            if 'r' in fields:
                fields['r'] = num_levels - 1 - int(fields['r'])
            if 'm' in fields:
                fields['m'] = int(fields['m']) + mid_offset
            leaf = key[m.end():]
            if is_attn:
                leaf = _attn_leaf(leaf, attn_names)
                if to_ldm and value.ndim == 2:
                    value = value[:, :, None, None]
                elif not to_ldm and value.ndim == 4:
                    value = value[:, :, 0, 0]
            elif leaf.startswith(shortcut[0]):
                leaf = shortcut[1] + leaf[len(shortcut[0]):]
            new = template.format(**fields) + leaf
            break
        out[new] = value
    return out


def is_diffusers_state_dict(state_dict: StateDict) -> bool:
    """Whether keys use diffusers names (``down_blocks``, ``mid_block``)."""
    return any(
        re.match(r'(encoder|decoder)\.(down_blocks|up_blocks|mid_block|'
                 r'conv_norm_out)\.', k) for k in state_dict)


def diffusers_to_ldm(state_dict: StateDict,
                     num_levels: Optional[int] = None) -> StateDict:
    """Rename a diffusers ``AutoencoderKL`` / ``VQModel`` state dict to LDM
    names; attention Linear weights ``[C, C]`` become 1x1 convs.

    ``num_levels`` (``len(ch_mult)``) reverses ``up_blocks`` order; inferred
    from the keys when omitted.
    """
    n = num_levels or _num_levels(state_dict, r'decoder\.up_blocks\.(\d+)\.')
    return _convert_layout(state_dict, to_ldm=True, num_levels=n)


def ldm_to_diffusers(state_dict: StateDict,
                     num_levels: Optional[int] = None) -> StateDict:
    """Rename an LDM state dict to diffusers names (current ``to_q`` ...
    attention names, Linear ``[C, C]`` weights); inverse of
    :func:`diffusers_to_ldm`."""
    n = num_levels or _num_levels(state_dict, r'decoder\.up\.(\d+)\.')
    return _convert_layout(state_dict, to_ldm=False, num_levels=n)


def diffusers_config(arch: dict, family: str,
                     scaling_factor: float = 0.18215) -> dict:
    """diffusers ``config.json`` for an architecture config of ours."""
    n = len(arch['ch_mult'])
    attn = [
        arch['resolution'] // 2**i in arch['attn_resolutions']
        for i in range(n)
    ]
    cfg = dict(
        _class_name='AutoencoderKL' if family == 'kl' else 'VQModel',
        in_channels=arch['in_channels'],
        out_channels=arch['out_ch'],
        down_block_types=[('AttnDownEncoderBlock2D' if a else
                           'DownEncoderBlock2D') for a in attn],
        up_block_types=[('AttnUpDecoderBlock2D' if a else 'UpDecoderBlock2D')
                        for a in reversed(attn)],
        block_out_channels=[arch['ch'] * m for m in arch['ch_mult']],
        layers_per_block=arch['num_res_blocks'],
        act_fn='silu',
        latent_channels=arch['z_channels'],
        norm_num_groups=arch['norm_groups'],
        sample_size=arch['resolution'],
        scaling_factor=scaling_factor)
    if family == 'kl' and arch['embed_dim'] != arch['z_channels']:
        raise ValueError('diffusers AutoencoderKL needs embed_dim == '
                         f"z_channels, got {arch['embed_dim']} and "
                         f"{arch['z_channels']}.")
    if family == 'vq':
        cfg.update(
            num_vq_embeddings=arch['n_embed'], vq_embed_dim=arch['embed_dim'])
    return cfg


def convert_to_ldm(obj: dict,
                   prefix: Optional[str] = None,
                   num_levels: Optional[int] = None) -> Tuple[StateDict, dict]:
    """Any accepted checkpoint object -> LDM-named autoencoder state dict.

    Returns:
        tuple: the state dict and a report dict with ``format``
        (``'ldm'`` / ``'diffusers'``), ``dropped_loss_keys``,
        ``ignored_keys``.
    """
    state_dict = unwrap_state_dict(obj)
    if not state_dict:
        raise ValueError(
            'Checkpoint holds no tensors at the top level or under '
            f'"state_dict" (top-level keys: {sorted(obj)[:_SHOW]}); load it '
            'yourself and pass the autoencoder state dict.')
    state_dict, report = extract_first_stage(state_dict, prefix)
    report['format'] = 'ldm'
    if is_diffusers_state_dict(state_dict):
        state_dict = diffusers_to_ldm(state_dict, num_levels)
        report['format'] = 'diffusers'
    return state_dict, report
