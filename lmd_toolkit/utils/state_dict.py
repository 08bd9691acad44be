"""Strict state-dict checks with one readable error (docs/en/reliability.md).

mmengine's loaders only log missing, unexpected and mis-shaped keys, so a
checkpoint of another architecture evaluates to numbers; a resumed run with
another width fails later with a bare tensor-size ``RuntimeError``. Every
toolkit path that loads weights into a model for evaluation, inference or
resumption checks them here first.
"""
import re
from typing import Dict, List, Mapping, Sequence, Tuple

import torch

__all__ = ['StateDictMismatchError', 'compare_state_dicts', 'check_state_dict',
           'strip_prefixes']


class StateDictMismatchError(RuntimeError):
    """Weights that do not fit the model; the message lists the keys."""


def strip_prefixes(state_dict: Mapping[str, torch.Tensor],
                   prefixes: Sequence[str] = ('module.', )) -> Dict:
    """Drop a wrapper prefix (``module.`` of DDP) from every key."""
    pattern = re.compile('^(' + '|'.join(re.escape(p) for p in prefixes) + ')')
    return {pattern.sub('', k): v for k, v in state_dict.items()}


def compare_state_dicts(
        expected: Mapping[str, torch.Tensor],
        loaded: Mapping[str, torch.Tensor]
) -> Tuple[List[str], List[str], List[Tuple[str, tuple, tuple]]]:
    """Keys of ``expected`` missing from ``loaded``, keys of ``loaded`` not in
    ``expected``, and ``(key, expected shape, loaded shape)`` for keys whose
    shapes differ; each sorted."""
    missing = sorted(k for k in expected if k not in loaded)
    unexpected = sorted(k for k in loaded if k not in expected)
    mismatched = sorted(
        (k, tuple(expected[k].shape), tuple(loaded[k].shape))
        for k in expected
        if k in loaded and hasattr(loaded[k], 'shape')
        and tuple(expected[k].shape) != tuple(loaded[k].shape))
    return missing, unexpected, mismatched


def _listing(keys: list, limit: int = 8) -> str:
    shown = ', '.join(str(k) for k in keys[:limit])
    more = len(keys) - limit
    return shown + (f', ... ({more} more)' if more > 0 else '')


def check_state_dict(model: torch.nn.Module,
                     state_dict: Mapping[str, torch.Tensor],
                     path: str,
                     role: str = 'Checkpoint',
                     fix: str = 'Use the checkpoint of this config, or the '
                     'config the checkpoint was trained with.',
                     allow_missing: Sequence[str] = ()) -> None:
    """Raise unless ``state_dict`` fits ``model`` exactly.

    Args:
        model (nn.Module): The model (unwrapped or DDP-wrapped).
        state_dict (Mapping): The weights to load (a ``module.`` prefix is
            ignored).
        path (str): The file the weights come from (for the message).
        role (str): What the file is, e.g. ``'Evaluation checkpoint'``.
        fix (str): What to do; ends the message.
        allow_missing (Sequence[str]): Key prefixes that may be absent (e.g.
            a frozen projector loaded from its own file).

    Raises:
        StateDictMismatchError: Listing missing, unexpected and mis-shaped
            keys with both shapes.
    """
    module = getattr(model, 'module', model)
    expected = module.state_dict()
    missing, unexpected, mismatched = compare_state_dicts(
        expected, strip_prefixes(state_dict))
    missing = [k for k in missing if not k.startswith(tuple(allow_missing))]
    if not (missing or unexpected or mismatched):
        return
    lines = [f'{role} {path!r} does not fit the model '
             f'{type(module).__name__}:']
    if mismatched:
        lines.append(f'  {len(mismatched)} key(s) with another shape: ' +
                     _listing([f'{k} (model {a}, file {b})'
                               for k, a, b in mismatched]))
    if missing:
        lines.append(f'  {len(missing)} key(s) missing from the file: ' +
                     _listing(missing))
    if unexpected:
        lines.append(f'  {len(unexpected)} unexpected key(s) in the file: ' +
                     _listing(unexpected))
    lines.append(f'  {fix}')
    raise StateDictMismatchError('\n'.join(lines))
