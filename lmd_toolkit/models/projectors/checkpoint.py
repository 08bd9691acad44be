"""Load official autoencoder weights into the projectors, as they come.

Accepted (auto-detected):

* an LDM / taming ``model.ckpt`` (``{'state_dict': {...}}``; its ``loss.*``
  keys - LPIPS, discriminator, logvar - are dropped and reported);
* a full Stable Diffusion checkpoint (keys under ``first_stage_model.``; the
  rest of the model is ignored);
* a stage-1 training checkpoint of ``AutoencoderTrainer`` (mmengine
  ``iter_N.pth``: keys under ``projector.``; the discriminator is ignored);
* a bare state dict in LDM names (``.ckpt .pt .pth .bin .safetensors``);
* a diffusers ``AutoencoderKL`` / ``VQModel`` folder (``config.json`` +
  ``diffusion_pytorch_model.{safetensors,bin}``, or a pipeline folder with a
  ``vae/`` sub-folder) or its weight file alone: keys are mapped to LDM names.

Pickled files are read with ``torch.load(..., weights_only=True)`` only, so a
file that needs arbitrary code to unpickle is refused.

The pure functions (``diffusers_to_ldm``, ``ldm_to_diffusers``,
``extract_first_stage``, ``check_state_dict``) work on state dicts; the
converter CLI ``tools/model_converters/convert_projector.py`` uses them.
"""
import functools
import json
import os.path as osp
import pickle
import re
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

StateDict = Dict[str, Tensor]

#: Prefix of the autoencoder inside Stable Diffusion / LDM diffusion ckpts.
FIRST_STAGE_PREFIX = 'first_stage_model.'
#: Prefix of the autoencoder inside an ``AutoencoderTrainer`` checkpoint.
TRAINER_PREFIX = 'projector.'
#: Keys that only the stage-1 training loss owns.
LOSS_PREFIX = 'loss.'
_DIFFUSERS_WEIGHTS = ('diffusion_pytorch_model.safetensors',
                      'diffusion_pytorch_model.bin')
_SHOW = 10  # keys listed per category in error messages


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's keys / shapes do not fit the projector."""


# ---------------------------------------------------------------- reading
def _resolve_diffusers_folder(path: str) -> Tuple[str, Optional[dict]]:
    """Weight file and ``config.json`` content of a diffusers folder."""
    folder = path
    if not osp.isfile(osp.join(folder, 'config.json')) and osp.isdir(
            osp.join(folder, 'vae')):
        folder = osp.join(folder, 'vae')  # a whole pipeline folder
    for name in _DIFFUSERS_WEIGHTS:
        weights = osp.join(folder, name)
        if osp.isfile(weights):
            config = None
            config_path = osp.join(folder, 'config.json')
            if osp.isfile(config_path):
                try:
                    with open(config_path) as f:
                        config = json.load(f)
                except (ValueError, UnicodeDecodeError) as err:
                    from lmd_toolkit.utils.fileio import UnreadableFileError
                    raise UnreadableFileError(
                        config_path, 'Diffusers projector config',
                        f'is not valid JSON (truncated? {err})',
                        PROJECTOR_FIX) from err
            return weights, config
    raise FileNotFoundError(
        f'{path} is a folder but holds none of {list(_DIFFUSERS_WEIGHTS)} '
        '(nor a vae/ sub-folder with them). Pass a checkpoint file or a '
        'diffusers AutoencoderKL / VQModel folder.')


#: Role and fix of projector weight files in :func:`read_checkpoint` errors.
PROJECTOR_ROLE = 'Projector weights'
PROJECTOR_FIX = ('Download or export the projector weights again (a '
                 'half-written file cannot be repaired), or set '
                 'model.projector.checkpoint to another file.')


def read_checkpoint(path: str) -> Tuple[dict, Optional[dict]]:
    """Read a checkpoint file or diffusers folder without converting it.

    Returns:
        tuple: the loaded object (a dict) and the diffusers ``config.json``
        content when ``path`` is a diffusers folder (else None).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnreadableFileError: The file (or a diffusers ``config.json``) is
            empty, truncated or not a checkpoint; names the file, its role
            (projector weights) and the fix.
        pickle.UnpicklingError: The file holds pickled objects other than
            tensors and plain containers.
    """
    from lmd_toolkit.utils.fileio import UnreadableFileError, safe_torch_load
    if not osp.exists(path):
        raise FileNotFoundError(
            f'Projector checkpoint not found: {path}. Set the config key '
            'model.projector.checkpoint to an existing file (an official '
            'model.ckpt, a diffusers folder, or a stage-1 iter_N.pth of '
            'tools/train.py configs/projectors/...; tools/demo.py trains '
            'the tiny one).')
    config = None
    if osp.isdir(path):
        path, config = _resolve_diffusers_folder(path)
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        if osp.getsize(path) == 0:
            raise UnreadableFileError(path, PROJECTOR_ROLE,
                                      'is empty (0 bytes)', PROJECTOR_FIX)
        try:
            return load_file(path, device='cpu'), config
        except Exception as err:  # SafetensorError: header or data cut off
            first = str(err).strip().splitlines()[0] if str(err) else ''
            raise UnreadableFileError(
                path, PROJECTOR_ROLE,
                f'is truncated or not a safetensors file ({first})',
                PROJECTOR_FIX) from err
    # mmengine training checkpoints (stage-1 ``iter_N.pth``) also hold the
    # message hub: allow exactly its data-only classes (still weights_only).
    from lmd_toolkit.utils.compat import apply_compat_shims
    apply_compat_shims()
    try:
        obj = safe_torch_load(path, PROJECTOR_ROLE, PROJECTOR_FIX)
    except UnreadableFileError as err:
        if isinstance(err.__cause__, pickle.UnpicklingError):
            raise pickle.UnpicklingError(
                f'Refusing to load {PROJECTOR_ROLE.lower()} {path}: it holds '
                'pickled objects other than tensors and plain containers, '
                'and projector weights are only read with torch.load('
                'weights_only=True). Re-save the state dict alone (or as '
                '.safetensors) in a trusted environment. Details: '
                f'{err.__cause__}') from err.__cause__
        raise
    if not isinstance(obj, dict):
        raise UnreadableFileError(
            path, PROJECTOR_ROLE, 'holds no dict (state dict or checkpoint '
            f'with "state_dict"), but a {type(obj).__name__}',
            PROJECTOR_FIX)
    return obj, config


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
_DIFF_ATTN = {
    'group_norm': 'norm', 'to_q': 'q', 'to_k': 'k', 'to_v': 'v',
    'to_out.0': 'proj_out',
    # diffusers < 0.14 names
    'query': 'q', 'key': 'k', 'value': 'v', 'proj_attn': 'proj_out'
}
_LDM_ATTN = {
    'norm': 'group_norm', 'q': 'to_q', 'k': 'to_k', 'v': 'to_v',
    'proj_out': 'to_out.0'
}


def is_diffusers_state_dict(state_dict: StateDict) -> bool:
    """Whether keys use diffusers names (``down_blocks``, ``mid_block``)."""
    return any(
        re.match(r'(encoder|decoder)\.(down_blocks|up_blocks|mid_block|'
                 r'conv_norm_out)\.', k) for k in state_dict)


def _num_levels(state_dict: StateDict, pattern: str) -> int:
    found = [int(m.group(1)) for m in map(re.compile(pattern).match,
                                         state_dict) if m]
    return max(found) + 1 if found else 0


def _attn_leaf(leaf: str, table: Dict[str, str]) -> str:
    name, _, param = leaf.rpartition('.')
    if name not in table:
        return leaf  # unknown: kept, reported as unexpected on load
    return f'{table[name]}.{param}'


def _rename(state_dict: StateDict, rules: list, attn_names: Dict[str, str],
            shortcut: Tuple[str, str]) -> StateDict:
    """Apply the first matching ``(pattern, repl, is_attn)`` rule per key;
    rename the leaf of attention / resnet sub-modules; reshape attention
    projection weights between Linear ``[C, C]`` and Conv ``[C, C, 1, 1]``
    (to conv when converting to LDM names, ``attn_names is _DIFF_ATTN``)."""
    to_conv = attn_names is _DIFF_ATTN
    out = {}
    for key, value in state_dict.items():
        new = key
        for pattern, repl, is_attn in rules:
            m = re.match(pattern, key)
            if not m:
                continue
            leaf = key[m.end():]
            if is_attn:
                leaf = _attn_leaf(leaf, attn_names)
                if to_conv and value.ndim == 2:
                    value = value[:, :, None, None]
                elif not to_conv and value.ndim == 4:
                    value = value[:, :, 0, 0]
            elif leaf.startswith(shortcut[0]):
                leaf = shortcut[1] + leaf[len(shortcut[0]):]
            new = repl(m) + leaf
            break
        out[new] = value
    return out


def diffusers_to_ldm(state_dict: StateDict,
                     num_levels: Optional[int] = None) -> StateDict:
    """Rename a diffusers ``AutoencoderKL`` / ``VQModel`` state dict to LDM
    names; attention Linear weights ``[C, C]`` become 1x1 convs.

    ``num_levels`` (``len(ch_mult)``) reverses ``up_blocks`` order; inferred
    from the keys when omitted.
    """
    n = num_levels or _num_levels(state_dict, r'decoder\.up_blocks\.(\d+)\.')
    rules = [
        (r'encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.',
         lambda m: f'encoder.down.{m[1]}.block.{m[2]}.', False),
        (r'encoder\.down_blocks\.(\d+)\.attentions\.(\d+)\.',
         lambda m: f'encoder.down.{m[1]}.attn.{m[2]}.', True),
        (r'encoder\.down_blocks\.(\d+)\.downsamplers\.0\.',
         lambda m: f'encoder.down.{m[1]}.downsample.', False),
        (r'decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.',
         lambda m: f'decoder.up.{n - 1 - int(m[1])}.block.{m[2]}.', False),
        (r'decoder\.up_blocks\.(\d+)\.attentions\.(\d+)\.',
         lambda m: f'decoder.up.{n - 1 - int(m[1])}.attn.{m[2]}.', True),
        (r'decoder\.up_blocks\.(\d+)\.upsamplers\.0\.',
         lambda m: f'decoder.up.{n - 1 - int(m[1])}.upsample.', False),
        (r'(encoder|decoder)\.mid_block\.resnets\.([01])\.',
         lambda m: f'{m[1]}.mid.block_{int(m[2]) + 1}.', False),
        (r'(encoder|decoder)\.mid_block\.attentions\.0\.',
         lambda m: f'{m[1]}.mid.attn_1.', True),
        (r'(encoder|decoder)\.conv_norm_out\.',
         lambda m: f'{m[1]}.norm_out.', False),
    ]
    return _rename(state_dict, rules, _DIFF_ATTN,
                   ('conv_shortcut.', 'nin_shortcut.'))


def ldm_to_diffusers(state_dict: StateDict,
                     num_levels: Optional[int] = None) -> StateDict:
    """Rename an LDM state dict to diffusers names (current ``to_q`` ...
    attention names, Linear ``[C, C]`` weights); inverse of
    :func:`diffusers_to_ldm`."""
    n = num_levels or _num_levels(state_dict, r'decoder\.up\.(\d+)\.')
    rules = [
        (r'encoder\.down\.(\d+)\.block\.(\d+)\.',
         lambda m: f'encoder.down_blocks.{m[1]}.resnets.{m[2]}.', False),
        (r'encoder\.down\.(\d+)\.attn\.(\d+)\.',
         lambda m: f'encoder.down_blocks.{m[1]}.attentions.{m[2]}.', True),
        (r'encoder\.down\.(\d+)\.downsample\.',
         lambda m: f'encoder.down_blocks.{m[1]}.downsamplers.0.', False),
        (r'decoder\.up\.(\d+)\.block\.(\d+)\.',
         lambda m: f'decoder.up_blocks.{n - 1 - int(m[1])}.resnets.{m[2]}.',
         False),
        (r'decoder\.up\.(\d+)\.attn\.(\d+)\.', lambda m:
         f'decoder.up_blocks.{n - 1 - int(m[1])}.attentions.{m[2]}.', True),
        (r'decoder\.up\.(\d+)\.upsample\.',
         lambda m: f'decoder.up_blocks.{n - 1 - int(m[1])}.upsamplers.0.',
         False),
        (r'(encoder|decoder)\.mid\.block_([12])\.',
         lambda m: f'{m[1]}.mid_block.resnets.{int(m[2]) - 1}.', False),
        (r'(encoder|decoder)\.mid\.attn_1\.',
         lambda m: f'{m[1]}.mid_block.attentions.0.', True),
        (r'(encoder|decoder)\.norm_out\.',
         lambda m: f'{m[1]}.conv_norm_out.', False),
    ]
    return _rename(state_dict, rules, _LDM_ATTN,
                   ('nin_shortcut.', 'conv_shortcut.'))


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


# -------------------------------------------------------- checking / hints
@functools.lru_cache(maxsize=None)
def preset_shapes(family: str, preset: str) -> Dict[str, Tuple[int, ...]]:
    """Parameter names and shapes of a preset (built on the meta device)."""
    from .kl_vae import KLVAEProjector
    from .vqgan import VQGANProjector
    cls = KLVAEProjector if family == 'kl' else VQGANProjector
    with torch.device('meta'):
        model = cls(preset=preset)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def suggest_presets(state_dict: StateDict) -> List[Tuple[str, str, int]]:
    """Presets ranked by fit: ``(class name, preset, n_problems)`` where
    ``n_problems`` counts keys absent or of another shape on either side
    (0 = exact fit)."""
    from .presets import all_presets
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    ranked = []
    for family, presets in all_presets().items():
        name = 'KLVAEProjector' if family == 'kl' else 'VQGANProjector'
        for preset in presets:
            ref = preset_shapes(family, preset)
            wrong = sum(ref.get(k) != s for k, s in shapes.items())
            missing = len(set(ref) - set(shapes))
            ranked.append((wrong, missing, name, preset))
    ranked.sort()
    return [(name, preset, wrong + missing)
            for wrong, missing, name, preset in ranked]


def _preset_hint(state_dict: StateDict) -> str:
    ranked = suggest_presets(state_dict)
    exact = [f'{c}(preset={p!r})' for c, p, n in ranked if n == 0]
    if exact:
        return ('Its keys and shapes fit exactly: ' + ', '.join(exact) +
                '; build the projector with that preset.')
    cls, preset, n = ranked[0]
    return (f'No preset fits exactly; closest is {cls}(preset={preset!r}) '
            f'with {n} differing keys (a partial or custom checkpoint? pass '
            'a dict preset with its architecture).')


def check_state_dict(model: nn.Module,
                     state_dict: StateDict,
                     source: str = 'state dict',
                     optional: Tuple[str, ...] = ()) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state_dict`` has
    exactly the model's keys and shapes (keys in ``optional`` may be
    missing). The message lists the first missing / unexpected / mis-shaped
    keys with counts and names the preset that would fit."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state_dict and k not in
               optional]
    unexpected = [k for k in state_dict if k not in expected]
    shape = [
        f'{k}: checkpoint {list(state_dict[k].shape)} vs model {list(s)}'
        for k, s in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != s
    ]
    if not (missing or unexpected or shape):
        return
    arch = getattr(model, 'preset', '?')
    lines = [f'{source} does not fit {type(model).__name__}'
             f'(preset={arch!r}):']
    for title, keys in (('missing keys', missing),
                        ('unexpected keys', unexpected),
                        ('shape mismatches', shape)):
        if keys:
            more = f' (first {_SHOW})' if len(keys) > _SHOW else ''
            lines.append(f'  {len(keys)} {title}{more}: ' +
                         ', '.join(keys[:_SHOW]))
    lines.append('  ' + _preset_hint(state_dict))
    raise CheckpointMismatchError('\n'.join(lines))


# ---------------------------------------------------------------- loading
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


def load_projector_weights(projector: nn.Module,
                           checkpoint: Union[str, dict],
                           prefix: Optional[str] = None,
                           source: Optional[str] = None) -> dict:
    """Load a checkpoint (path or loaded dict) into a KL / VQ projector.

    Every parameter must be present with its shape, otherwise
    :class:`CheckpointMismatchError` names the problem. Dropped ``loss.*``
    keys and ignored non-autoencoder keys are logged and returned.

    Args:
        projector (nn.Module): A ``KLVAEProjector`` or ``VQGANProjector``.
        checkpoint (str | dict): File / diffusers folder, or a loaded dict.
        prefix (str, optional): Key prefix of the autoencoder inside a larger
            checkpoint; ``first_stage_model.`` and ``projector.`` (stage-1
            ``AutoencoderTrainer`` checkpoints) are detected automatically.
        source (str, optional): Name used in messages when ``checkpoint`` is
            an already loaded dict. Defaults to the path or 'state dict'.

    Returns:
        dict: ``format``, ``dropped_loss_keys``, ``ignored_keys``,
        ``scale_factor`` (value found in the checkpoint, or None).
    """
    if source is None:
        source = checkpoint if isinstance(checkpoint, str) else 'state dict'
    if isinstance(checkpoint, str):
        checkpoint, _ = read_checkpoint(checkpoint)
    num_levels = len(projector.arch['ch_mult'])
    state_dict, report = convert_to_ldm(checkpoint, prefix, num_levels)
    # The scale factor is config, not weights, unless the projector is in
    # 'auto' mode: then a stored value is restored and may be absent.
    stored = state_dict.pop('scale_factor', None)
    report['scale_factor'] = None if stored is None else float(stored)
    auto = getattr(projector, 'auto_scale', False)
    if auto and stored is not None:
        state_dict['scale_factor'] = stored
    check_state_dict(
        projector, state_dict, source,
        optional=('scale_factor', ) if auto else ())
    projector.load_state_dict(state_dict, strict=not auto or stored
                              is not None)
    msg = (f'Loaded {type(projector).__name__}(preset='
           f"{getattr(projector, 'preset', '?')!r}) weights from {source} "
           f"({report['format']} format)")
    if report['dropped_loss_keys']:
        msg += f"; dropped {len(report['dropped_loss_keys'])} loss.* keys"
    if report['ignored_keys']:
        msg += (f"; ignored {len(report['ignored_keys'])} keys outside the "
                'autoencoder')
    if stored is not None and not auto:
        msg += (f'; the checkpoint holds scale_factor={float(stored):g}, '
                f'the projector keeps its configured '
                f'{float(projector.scale_factor):g}')
    print_log(msg, logger='current')
    return report


def save_state_dict(state_dict: StateDict, path: str,
                    force: bool = False) -> None:
    """Write ``.safetensors`` (by suffix) or a torch ``.pth`` / ``.pt`` /
    ``.ckpt`` / ``.bin`` atomically; refuse to overwrite unless ``force``."""
    if osp.exists(path) and not force:
        raise FileExistsError(f'{path} exists; pass --force (force=True) to '
                              'overwrite it.')
    from lmd_toolkit.utils.fileio import atomic_write
    tensors = {k: v.detach().contiguous().cpu() for k, v in
               state_dict.items()}
    with atomic_write(path, 'wb') as f:  # never a half-written file
        if path.endswith('.safetensors'):
            from safetensors.torch import save
            f.write(save(tensors))
        else:
            torch.save(tensors, f)
