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
        model (nn.Module): The model (unwrapped, DDP- or FSDP-wrapped).
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
    # A sharded model (FSDP) keeps the full names and shapes it had before
    # wrapping; asking it for its state dict would gather every weight.
    expected = getattr(model, 'lmd_state_shapes', None)
    if expected is None:
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


# What FSDP and activation-checkpoint wrappers insert into parameter names
# (anywhere: every wrapped unit adds one).
_WRAPPER_PARTS = ('_fsdp_wrapped_module.', '_checkpoint_wrapped_module.')


def clean_param_name(name: str) -> str:
    """A parameter name as in the unwrapped model (no ``module.`` of DDP, no
    ``_fsdp_wrapped_module.`` of FSDP)."""
    if name.startswith('module.'):
        name = name[len('module.'):]
    for part in _WRAPPER_PARTS:
        name = name.replace(part, '')
    return name


def optimizer_param_names(model: torch.nn.Module,
                          optimizer: torch.optim.Optimizer) -> List[List[str]]:
    """The unwrapped-model name of every parameter of every optimizer group,
    in the optimizer's order (the order ``Optimizer.state_dict()`` numbers
    them in)."""
    names = {id(p): clean_param_name(n) for n, p in model.named_parameters()}
    return [[names.get(id(p), f'<unnamed {i}.{j}>')
             for j, p in enumerate(group['params'])]
            for i, group in enumerate(optimizer.param_groups)]


def relayout_optimizer_state(saved: dict, saved_names: List[List[str]],
                             optimizer: torch.optim.Optimizer,
                             names: List[List[str]]) -> dict:
    """An ``Optimizer.state_dict()`` saved with one grouping of the
    parameters, rewritten for ``optimizer``'s grouping, by parameter name.

    A run whose optimizer holds only the trainable parameters (FSDP) and one
    whose optimizer also lists the frozen ones as stateless groups (mmengine's
    default constructor under DDP) resume from each other's checkpoints: each
    parameter's state follows its name; a group's hyper-parameters come from
    the saved group of its first saved parameter (the current ones where
    none was saved).

    Args:
        saved (dict): The saved state dict (integer ids).
        saved_names (list): Names of ``saved``'s groups' parameters.
        optimizer (Optimizer): The optimizer that will load it.
        names (list): Names of ``optimizer``'s groups' parameters.

    Returns:
        dict: A state dict ``optimizer.load_state_dict`` takes.
    """
    state_of, group_of = {}, {}
    for group, group_names in zip(saved['param_groups'], saved_names):
        for pid, name in zip(group['params'], group_names):
            group_of[name] = group
            if pid in saved['state']:
                state_of[name] = saved['state'][pid]
    missing = sorted(set(state_of) - {n for g in names for n in g})
    if missing:
        raise ValueError(
            f'The checkpoint holds optimizer state for {len(missing)} '
            f'parameter(s) this optimizer does not have: '
            f'{_listing(missing)}; resume with the config the checkpoint '
            'was trained with.')
    groups, state, pid = [], {}, 0
    for current, group_names in zip(optimizer.param_groups, names):
        source = next((group_of[n] for n in group_names if n in group_of),
                      current)
        group = {k: v for k, v in source.items() if k != 'params'}
        group['params'] = []
        for name in group_names:
            if name in state_of:
                state[pid] = state_of[name]
            group['params'].append(pid)
            pid += 1
        groups.append(group)
    return dict(state=state, param_groups=groups)
