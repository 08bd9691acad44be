"""Read official autoencoder weights and load them into the projectors.

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

The key layouts are pure functions in ``formats.py``; this module reads files
(:func:`read_checkpoint`), checks a state dict against a projector and names
the preset that fits (:func:`check_state_dict`), loads
(:func:`load_projector_weights`) and writes (:func:`save_state_dict`). The
converter CLI ``tools/model_converters/convert_projector.py`` uses both.
"""
import functools
import json
import os.path as osp
import pickle
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import nn

from lmd_toolkit.utils.compat import apply_compat_shims
from lmd_toolkit.utils.fileio import (UnreadableFileError, atomic_write,
                                      safe_torch_load)
from .autoencoder_layers import build_encoder_decoder
from .formats import StateDict, convert_to_ldm
from .presets import all_presets, resolve_config

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
        from safetensors.torch import load_file  # optional dependency
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


# -------------------------------------------------------- checking / hints
#: Projector class of each family, named in the hints.
FAMILY_CLASSES = {'kl': 'KLVAEProjector', 'vq': 'VQGANProjector'}


def _bottleneck_shapes(family: str, arch: dict) -> Dict[str, tuple]:
    """Shapes of the modules between encoder and decoder (as the projector
    classes build them; a test keeps both in step)."""
    z, e = arch['z_channels'], arch['embed_dim']
    zq, eq = (2 * z, 2 * e) if family == 'kl' else (z, e)
    shapes = {}
    if family == 'vq':
        shapes['quantize.embedding.weight'] = (arch['n_embed'], e)
    shapes.update({
        'quant_conv.weight': (eq, zq, 1, 1), 'quant_conv.bias': (eq, ),
        'post_quant_conv.weight': (z, e, 1, 1), 'post_quant_conv.bias': (z, )
    })
    return shapes


@functools.lru_cache(maxsize=None)
def preset_shapes(family: str, preset: str) -> Dict[str, Tuple[int, ...]]:
    """State dict names and shapes of a preset's projector (encoder and
    decoder built on the meta device), without building the projector."""
    arch = resolve_config(family, preset)
    with torch.device('meta'):
        encoder, decoder = build_encoder_decoder(arch, family == 'kl')
    shapes = {}
    for name, module in (('encoder', encoder), ('decoder', decoder)):
        shapes.update({f'{name}.{k}': tuple(v.shape)
                       for k, v in module.state_dict().items()})
    shapes.update(_bottleneck_shapes(family, arch))
    return shapes


def suggest_presets(state_dict: StateDict) -> List[Tuple[str, str, int]]:
    """Presets ranked by fit: ``(class name, preset, n_problems)`` where
    ``n_problems`` counts keys absent or of another shape on either side
    (0 = exact fit)."""
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    ranked = []
    for family, presets in all_presets().items():
        name = FAMILY_CLASSES[family]
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
    tensors = {k: v.detach().contiguous().cpu() for k, v in
               state_dict.items()}
    with atomic_write(path, 'wb') as f:  # never a half-written file
        if path.endswith('.safetensors'):
            from safetensors.torch import save  # optional dependency
            f.write(save(tensors))
        else:
            torch.save(tensors, f)
