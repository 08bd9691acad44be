"""Peak signal-to-noise ratio between reconstructions and originals."""
import logging
import math
from typing import Dict, List

import numpy as np
from mmengine.logging import print_log
from torch import Tensor

from lmd_toolkit.registry import METRICS
from .base import ImagePairMetric

#: Peak value of the images (8-bit range).
DATA_RANGE = 255.0


@METRICS.register_module()
class PSNR(ImagePairMetric):
    """Peak signal-to-noise ratio, per image on [0, 255], averaged over images.

    ``PSNR = 10 * log10(255**2 / MSE)`` with the MSE over all pixels and
    channels of one image (float64), as
    ``skimage.metrics.peak_signal_noise_ratio(gt, pred, data_range=255)``.
    Both images are clamped to [0, 255] first. An image identical to its
    ground truth has PSNR ``inf``, so the mean is ``inf`` too (a warning
    counts such images). Reference:
    https://en.wikipedia.org/wiki/Peak_signal-to-noise_ratio

    Args:
        quantize (bool): Round both images to integers after clamping, i.e.
            measure what a saved uint8 PNG would give. Defaults to False (the
            model's float output is measured).

    ``collect_device`` and ``prefix`` (key ``prefix/PSNR``) as
    :class:`ImagePairMetric`.
    """

    name = 'PSNR'

    def __init__(self, quantize: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.quantize = quantize

    def score(self, pred: Tensor, gt: Tensor) -> List[float]:
        """One PSNR (float, dB) per image."""
        mses = [float(((p - g)**2).mean()) for p, g in zip(pred, gt)]
        return [
            math.inf if mse == 0 else 10 * math.log10(DATA_RANGE**2 / mse)
            for mse in mses
        ]

    def compute_metrics(self, results: List[float]) -> Dict[str, float]:
        """Mean PSNR over all images."""
        values = np.asarray(results, dtype=np.float64)
        n_identical = int(np.isinf(values).sum())
        if n_identical:
            print_log(
                f'PSNR: {n_identical} of {len(values)} images equal their '
                'ground truth (PSNR = inf), so the mean PSNR is inf.',
                logger='current',
                level=logging.WARNING)
        return super().compute_metrics(results)
