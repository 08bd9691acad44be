"""Per-pixel reconstruction loss of stage-1 training."""
import torch.nn.functional as F
from torch import Tensor

PIXEL_LOSSES = ('l1', 'l2')


def pixel_loss(pred: Tensor, target: Tensor, kind: str = 'l1') -> Tensor:
    """Element-wise ``|pred - target|`` ('l1', taming / LDM) or
    ``(pred - target)^2`` ('l2', paper eq. 4), not reduced.

    Returns:
        Tensor: Same shape as ``pred``, e.g. ``(B, 3, H, W)``.
    """
    if kind == 'l1':
        return F.l1_loss(pred, target, reduction='none')
    if kind == 'l2':
        return F.mse_loss(pred, target, reduction='none')
    raise ValueError(f'pixel_loss: kind must be one of {PIXEL_LOSSES}, got '
                     f'{kind!r}.')
