"""Colour augmentations that widen a small photo set's colour coverage.

A stage-1 autoencoder trained on a handful of photos sees few flat or slowly
varying colours, and its ``GroupNorm`` layers remove each group's mean and
scale, so an absolute colour absent from the photos comes back wrong.
``RandomColorField`` shows it such colours; ``RandomChannelShuffle`` shows
every hue of the photos in other channels (docs/en/stage1.md measures both).
"""
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform

from lmd_toolkit.registry import TRANSFORMS


def _check_prob(name: str, prob: float) -> None:
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f'{name}: prob must lie in [0, 1], got {prob}')


def _check_image(name: str, img: np.ndarray) -> None:
    if img.dtype != np.uint8 or img.ndim != 3:
        raise TypeError(f'{name}: results["img"] must be a (H, W, C) uint8 '
                        f'image, got dtype {img.dtype} shape {img.shape}; '
                        'put it before the transforms that convert the '
                        'image, such as PackInputs')


@TRANSFORMS.register_module()
class RandomColorField(BaseTransform):
    """Replace the image by a smooth random colour field, with a probability.

    The field is a ``g x g`` grid of uniformly random colours (``g`` drawn
    uniformly from ``1 .. max_grid``; ``g = 1`` is one flat colour) enlarged
    to the image's size with bicubic interpolation, clipped to ``[0, 255]``.
    The image keeps its size, channel count and dtype. Random numbers come
    from ``np.random``, which mmengine seeds in every worker.

    Args:
        prob (float): Probability of replacing an image. Defaults to 0.25.
        max_grid (int): Largest grid side; larger gives busier fields.
            Defaults to 4.
    """

    def __init__(self, prob: float = 0.25, max_grid: int = 4) -> None:
        _check_prob('RandomColorField', prob)
        if max_grid < 1:
            raise ValueError('RandomColorField: max_grid must be >= 1, got '
                             f'{max_grid}')
        self.prob = prob
        self.max_grid = max_grid

    def transform(self, results: dict) -> dict:
        img = results['img']
        _check_image('RandomColorField', img)
        if np.random.rand() >= self.prob:
            return results
        height, width, channels = img.shape
        side = np.random.randint(1, self.max_grid + 1)
        grid = np.random.uniform(0.0, 255.0, (1, channels, side, side))
        field = F.interpolate(
            torch.from_numpy(grid.astype(np.float32)),
            size=(height, width),
            mode='bicubic',
            align_corners=False)  # (1, C, H, W)
        field = field[0].permute(1, 2, 0).round().clamp(0, 255)
        results['img'] = field.numpy().astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'max_grid={self.max_grid})')


@TRANSFORMS.register_module()
class RandomChannelShuffle(BaseTransform):
    """Put the colour channels in a random order, with a probability.

    All orders are equally likely (the identity included). Random numbers
    come from ``np.random``, which mmengine seeds in every worker.

    Args:
        prob (float): Probability of shuffling an image. Defaults to 1.0.
    """

    def __init__(self, prob: float = 1.0) -> None:
        _check_prob('RandomChannelShuffle', prob)
        self.prob = prob

    def transform(self, results: dict) -> dict:
        img = results['img']
        _check_image('RandomChannelShuffle', img)
        if np.random.rand() >= self.prob:
            return results
        order = np.random.permutation(img.shape[2])
        results['img'] = np.ascontiguousarray(img[..., order])
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'
