"""Peak signal-to-noise ratio between reconstructions and originals."""
import logging
import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from lmd_toolkit.registry import METRICS
from .utils import image_pairs

#: Peak value of the images (8-bit range).
DATA_RANGE = 255.0


@METRICS.register_module()
class PSNR(BaseMetric):
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
        collect_device (str): Device used to gather results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric key (``prefix/PSNR``).
            Defaults to None (key ``PSNR``).
    """

    default_prefix: Optional[str] = ''

    def __init__(self,
                 quantize: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.quantize = quantize

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Store one PSNR (float, dB) per image."""
        for pred, gt in image_pairs(data_samples, quantize=self.quantize):
            mse = float(((pred - gt)**2).mean())
            psnr = math.inf if mse == 0 else 10 * math.log10(
                DATA_RANGE**2 / mse)
            self.results.append(psnr)

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
        return {'PSNR': float(values.mean())}
