"""Refuse a config with impossible values before any model or dataset is
built (docs/en/reliability.md).

Checked by :func:`check_config`: the dataloaders' ``batch_size`` (> 0) and
``num_workers`` (>= 0), ``train_cfg.max_iters`` / ``max_epochs`` and
``val_interval`` (> 0), and, in validation / test pipelines, a crop
(``CenterCrop`` / ``RandomCrop`` of any scope) larger than what the
preceding ``Resize`` / ``ResizeEdge`` leaves, which would otherwise fail
(or silently pad) at the first batch. Every refusal is one
:class:`ConfigValueError` naming the key path, the value got and what is
expected.
"""
from typing import Any, List, Optional, Sequence, Tuple

__all__ = ['ConfigValueError', 'check_config', 'positive_int']


class ConfigValueError(ValueError):
    """A config value that cannot work; the message names the key path, the
    value got and what is expected."""

    def __init__(self, key: str, got: Any, expected: str,
                 source: Optional[str] = None) -> None:
        self.key, self.got, self.expected = key, got, expected
        where = f' (config {source})' if source else ''
        super().__init__(f'Config key {key}{where}: expected {expected}, got '
                         f'{got!r}. Fix it in the config or with '
                         f'--cfg-options {key}=...')


def positive_int(text: str) -> int:
    """``argparse`` type of a count: an integer >= 1 (``--batch-size``,
    ``--num-images``); anything else is refused by the parser before any
    model or data is built."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected a positive integer, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f'expected a positive integer (>= 1), got {value}')
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_loader(cfg, name: str, errors: List[ConfigValueError],
                  source: Optional[str]) -> None:
    loader = cfg.get(name)
    if loader is None or not hasattr(loader, 'get'):
        return
    batch = loader.get('batch_size')
    if batch is not None and not (_is_int(batch) and batch > 0):
        errors.append(
            ConfigValueError(f'{name}.batch_size', batch,
                             'a positive integer (samples per batch and '
                             'process)', source))
    workers = loader.get('num_workers')
    if workers is not None and not (_is_int(workers) and workers >= 0):
        errors.append(
            ConfigValueError(f'{name}.num_workers', workers,
                             'an integer >= 0 (0 = load in the main '
                             'process)', source))


def _check_train_cfg(cfg, errors: List[ConfigValueError],
                     source: Optional[str]) -> None:
    train_cfg = cfg.get('train_cfg')
    if train_cfg is None or not hasattr(train_cfg, 'get'):
        return
    _check_strategy(cfg, errors, source)
    for key, what in (('max_iters', 'training iterations'),
                      ('max_epochs', 'training epochs'),
                      ('val_interval', 'iterations / epochs between '
                       'validations')):
        value = train_cfg.get(key)
        if value is not None and not (_is_int(value) and value > 0):
            errors.append(
                ConfigValueError(f'train_cfg.{key}', value,
                                 f'a positive integer ({what})', source))


def _check_strategy(cfg, errors: List[ConfigValueError],
                    source: Optional[str]) -> None:
    """``strategy`` is read by mmengine's ``FlexibleRunner`` only: with the
    plain ``Runner`` an FSDP block would be ignored without a word."""
    if cfg.get('strategy') is not None and \
            cfg.get('runner_type') != 'FlexibleRunner':
        errors.append(ConfigValueError(
            'runner_type', cfg.get('runner_type'),
            "'FlexibleRunner' when the config sets strategy (add "
            "configs/_base_/strategies/fsdp.py to _base_, which sets both)",
            source))


# ------------------------------------------------------------- pipelines
_CROPS = ('CenterCrop', 'RandomCrop')
_RESIZES = ('Resize', 'ResizeEdge')


def _short_type(step: Any) -> str:
    kind = step.get('type', '') if hasattr(step, 'get') else ''
    return kind.rsplit('.', 1)[-1] if isinstance(kind, str) else ''


def _pair(value: Any) -> Optional[Tuple[int, int]]:
    """``int`` or ``(w, h)`` -> ``(w, h)``; None when not static."""
    if _is_int(value):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            _is_int(v) for v in value):
        return int(value[0]), int(value[1])
    return None


def _crop_too_large(resize: Any, crop: Tuple[int, int]) -> Optional[str]:
    """Why ``crop`` (w, h) cannot fit what ``resize`` outputs, or None
    (fits, or not decidable from the config)."""
    kind = _short_type(resize)
    if kind == 'ResizeEdge':
        scale = resize.get('scale')
        if not _is_int(scale):
            return None
        edge = resize.get('edge', 'short')
        need = dict(short=min(crop), long=max(crop), width=crop[0],
                    height=crop[1]).get(edge)
        if need is not None and need > scale:
            return (f'its {edge} edge is {scale} px, the crop needs {need} '
                    'px there')
        return None
    scale = _pair(resize.get('scale'))
    if scale is None:  # scale_factor, or not static
        return None
    if resize.get('keep_ratio', False):
        # The image fits in the box: long edge <= max, short edge <= min.
        if max(crop) > max(scale) or min(crop) > min(scale):
            return (f'with keep_ratio it fits in {scale[0]} x {scale[1]} '
                    f'px, the crop is {crop[0]} x {crop[1]} px')
        return None
    if crop[0] > scale[0] or crop[1] > scale[1]:
        return (f'it outputs {scale[0]} x {scale[1]} px (w x h), the crop is '
                f'{crop[0]} x {crop[1]} px')
    return None


def _check_pipeline(pipeline: Sequence, key: str,
                    errors: List[ConfigValueError],
                    source: Optional[str]) -> None:
    last_resize = None  # (index, step)
    for index, step in enumerate(pipeline):
        kind = _short_type(step)
        if kind in _RESIZES:
            last_resize = (index, step)
        elif 'Pad' in kind or ('Resize' in kind and kind not in _RESIZES):
            last_resize = None  # the size is no longer known statically
        elif kind in _CROPS and last_resize is not None:
            if step.get('padding') is not None or step.get(
                    'pad_if_needed', False):
                continue
            crop = _pair(step.get('crop_size'))
            if crop is None:
                continue
            why = _crop_too_large(last_resize[1], crop)
            if why is None:
                continue
            r_index, resize = last_resize
            r_args = {k: v for k, v in resize.items() if k in (
                'scale', 'edge', 'keep_ratio')}
            errors.append(
                ConfigValueError(
                    f'{key}[{index}].crop_size', step.get('crop_size'),
                    f'a crop no larger than the output of the preceding '
                    f'{resize["type"]} ({key}[{r_index}], '
                    + ', '.join(f'{k}={v!r}' for k, v in r_args.items())
                    + f'): {step["type"]} of {key}[{index}] is larger ({why})'
                    '; crop smaller or resize larger', source))


def _pipelines(node: Any, key: str) -> List[Tuple[str, list]]:
    """Every ``pipeline`` list under a dataset config (wrappers included),
    with its key path."""
    found = []
    if hasattr(node, 'items'):
        for name, value in node.items():
            path = f'{key}.{name}'
            if name == 'pipeline' and isinstance(value, (list, tuple)):
                found.append((path, list(value)))
            elif hasattr(value, 'items') or isinstance(value, (list, tuple)):
                found += _pipelines(value, path)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            if hasattr(value, 'items'):
                found += _pipelines(value, f'{key}[{i}]')
    return found


def check_config(cfg, mode: str = 'train') -> None:
    """Refuse impossible values of a config before anything is built.

    Args:
        cfg (Config): The loaded config (after ``--cfg-options``).
        mode (str): ``'train'`` (checks ``train_dataloader``,
            ``val_dataloader``, ``train_cfg`` and the validation pipelines) or
            ``'test'`` (``test_dataloader`` and its pipelines). Defaults to
            'train'.

    Raises:
        ConfigValueError: The first problem found, naming its key path, the
            value got and what is expected (more problems are listed after
            it).
    """
    if mode not in ('train', 'test'):
        raise ValueError(f"check_config: mode must be 'train' or 'test', got "
                         f'{mode!r}.')
    source = getattr(cfg, 'filename', None)
    errors: List[ConfigValueError] = []
    loaders = ['train_dataloader', 'val_dataloader'] if mode == 'train' \
        else ['test_dataloader']
    for name in loaders:
        _check_loader(cfg, name, errors, source)
    if mode == 'train':
        _check_train_cfg(cfg, errors, source)
    for name in loaders[1:] if mode == 'train' else loaders:
        loader = cfg.get(name)
        if loader is None or not hasattr(loader, 'get'):
            continue
        for key, pipeline in _pipelines(loader.get('dataset'),
                                        f'{name}.dataset'):
            _check_pipeline(pipeline, key, errors, source)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            more = '\n'.join(f'  also: {e}' for e in errors[1:])
            first.args = (f'{first.args[0]}\n{more}', )
        raise first
