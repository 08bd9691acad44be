"""The base of the image-quality metrics: (pred, gt) pairs in, a mean out."""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from torch import Tensor

from .utils import group_by_shape, image_pairs


class ImagePairMetric(BaseMetric):
    """Scores the ``(pred_img, gt_img)`` pairs of the model's predict mode.

    :meth:`process` reads the pairs of a batch (:func:`image_pairs`: clamped
    to [0, 255], rounded when ``quantize``, in ``pair_dtype``), stacks those
    of one shape (:func:`group_by_shape`) and stores what :meth:`score`
    returns for them, one result per image in batch order;
    :meth:`compute_metrics` averages the results under the key ``name``. A
    metric sets ``name``, implements :meth:`score` and, for another
    reduction than the mean (FID), overrides :meth:`compute_metrics`.

    Args:
        collect_device (str): Device used to gather results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric key
            (``prefix/<name>``). Defaults to None (key ``<name>``).
    """

    #: The key of the metric's value.
    name: str = ''
    #: Round the images to integers after clamping (a saved uint8 PNG).
    quantize: bool = False
    #: The dtype the pairs are scored in.
    pair_dtype: torch.dtype = torch.float64
    default_prefix: Optional[str] = ''

    def __init__(self,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def score(self, pred: Tensor, gt: Tensor) -> List[Any]:
        """The results of a ``(B, 3, H, W)`` batch of pairs, one per image."""
        raise NotImplementedError

    @torch.no_grad()
    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Store one result per image of the batch."""
        pairs = image_pairs(data_samples, self.quantize, self.pair_dtype)
        for pred, gt in group_by_shape(pairs):
            self.results.extend(self.score(pred, gt))

    def compute_metrics(self, results: List[Any]) -> Dict[str, float]:
        """The mean result over all images (float64)."""
        return {
            self.name: float(np.mean(np.asarray(results, dtype=np.float64)))
        }
