"""Helpers shared by the image-quality metrics.

Every metric reads the same per-sample contract from the model's predict mode:
a dict with ``'gt_img'`` and ``'pred_img'``, float tensors ``(3, H, W)``, RGB,
in ``[0, 255]`` (``pred_img`` unrounded, possibly slightly out of range).
"""
from typing import Any, List, Sequence, Tuple

import torch
from torch import Tensor

# The weights-file lookup lives below both models and evaluation; the
# metrics import it from here.
from lmd_toolkit.models.losses.lpips_net import (  # noqa: F401
    resolve_weights_file, torch_checkpoint_dir)

GT_KEY = 'gt_img'
PRED_KEY = 'pred_img'


def _lookup(sample: Any, key: str, index: int) -> Tensor:
    """Read ``key`` from a dict-like data sample, with a helpful error."""
    try:
        value = sample[key]
    except (KeyError, TypeError, AttributeError):
        value = getattr(sample, key, None)
        if value is None:
            got = list(sample.keys()) if hasattr(sample, 'keys') else type(
                sample).__name__
            raise KeyError(
                f'data_samples[{index}] has no {key!r}: the model\'s predict '
                f'mode must return dicts with {GT_KEY!r} and {PRED_KEY!r} '
                f'(float tensors (3, H, W) in [0, 255]); got {got}.') from None
    if not isinstance(value, Tensor):
        raise TypeError(f'data_samples[{index}][{key!r}] must be a torch '
                        f'Tensor (3, H, W), got {type(value).__name__}.')
    if value.dim() != 3 or value.shape[0] != 3:
        raise ValueError(f'data_samples[{index}][{key!r}] must have shape '
                         f'(3, H, W) (RGB, channels first), got '
                         f'{tuple(value.shape)}.')
    return value


def image_pairs(data_samples: Sequence[Any],
                quantize: bool = False,
                dtype: torch.dtype = torch.float64
                ) -> List[Tuple[Tensor, Tensor]]:
    """Return ``(pred, gt)`` pairs clamped to ``[0, 255]`` in ``dtype``.

    Args:
        data_samples (Sequence): The model outputs of one batch.
        quantize (bool): Round both images to integers (as when saved to
            uint8) after clamping. Defaults to False.
        dtype (torch.dtype): Output dtype. Defaults to torch.float64.

    Returns:
        list[tuple[Tensor, Tensor]]: ``(pred, gt)``, each ``(3, H, W)``.
    """
    pairs = []
    for i, sample in enumerate(data_samples):
        pred = _lookup(sample, PRED_KEY, i).detach().to(dtype)
        gt = _lookup(sample, GT_KEY, i).detach().to(dtype)
        if pred.shape != gt.shape:
            raise ValueError(
                f'data_samples[{i}]: {PRED_KEY!r} has shape '
                f'{tuple(pred.shape)} but {GT_KEY!r} has {tuple(gt.shape)}; '
                'they must match.')
        pred, gt = pred.clamp(0, 255), gt.clamp(0, 255)
        if quantize:
            pred, gt = pred.round(), gt.round()
        pairs.append((pred, gt))
    return pairs


def group_by_shape(
        pairs: List[Tuple[Tensor, Tensor]]) -> List[Tuple[Tensor, Tensor]]:
    """Stack consecutive pairs of equal shape into ``(B, 3, H, W)`` batches.

    Order is kept, so per-image results stay aligned with ``data_samples``.
    """
    batches: List[Tuple[List[Tensor], List[Tensor]]] = []
    for pred, gt in pairs:
        if batches and batches[-1][0][0].shape == pred.shape:
            batches[-1][0].append(pred)
            batches[-1][1].append(gt)
        else:
            batches.append(([pred], [gt]))
    return [(torch.stack(p), torch.stack(g)) for p, g in batches]
