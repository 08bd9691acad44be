"""LPIPS perceptual distance, from the ``lpips`` package, fully offline."""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from torch import nn

from lmd_toolkit.models.losses.lpips_net import (BACKBONE_FILES,
                                                 build_lpips_network,
                                                 check_lpips_net,
                                                 resolve_weights_file)
from lmd_toolkit.registry import METRICS
from .utils import group_by_shape, image_pairs

@METRICS.register_module()
class LPIPS(BaseMetric):
    """Learned perceptual image patch similarity, averaged over images.

    Wraps ``lpips.LPIPS`` (v0.1, linear calibration heads shipped with the
    package): both images are clamped to [0, 255], scaled to [-1, 1] and
    compared; lower is more similar. The backbone's ImageNet weights are read
    from a local torchvision file, never downloaded. The network is built on
    the first :meth:`process` call, on the data's device. Reference:
    https://arxiv.org/abs/1801.03924

    Args:
        net (str): Backbone, ``'alex'``, ``'vgg'`` or ``'squeeze'``.
            Defaults to 'alex'.
        backbone_checkpoint (str, optional): Path of torchvision's backbone
            weights (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth`` or
            ``squeezenet1_1-b8a52dc0.pth``). Defaults to None: look for that
            file name in ``$TORCH_HOME/hub/checkpoints/``.
        pnet_rand (bool): Use a randomly initialised backbone and load no
            backbone weights. Only for testing the plumbing: the values are
            not LPIPS. Defaults to False.
        collect_device (str): Device used to gather results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric key (``prefix/LPIPS``).
            Defaults to None (key ``LPIPS``).
    """

    default_prefix: Optional[str] = ''

    def __init__(self,
                 net: str = 'alex',
                 backbone_checkpoint: Optional[str] = None,
                 pnet_rand: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        check_lpips_net(net)
        self.net = net
        self.backbone_checkpoint = backbone_checkpoint
        self.pnet_rand = pnet_rand
        self._model: Optional[nn.Module] = None
        if not pnet_rand:  # fail now, not after the first training epoch
            self._weights_path()

    def _weights_path(self) -> str:
        return resolve_weights_file(self.backbone_checkpoint,
                                    BACKBONE_FILES[self.net],
                                    f'LPIPS (net={self.net!r}) backbone',
                                    'backbone_checkpoint')

    def _build(self, device: torch.device) -> nn.Module:
        path = None if self.pnet_rand else self._weights_path()
        return build_lpips_network(self.net, path).to(device)

    @torch.no_grad()
    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Store one LPIPS distance (float) per image."""
        pairs = image_pairs(data_samples, dtype=torch.float32)
        if not pairs:
            return
        device = pairs[0][0].device
        if self._model is None:
            self._model = self._build(device)
        self._model.to(device)
        for pred, gt in group_by_shape(pairs):
            dist = self._model(pred / 127.5 - 1, gt / 127.5 - 1)  # (B,1,1,1)
            self.results.extend(dist.flatten().double().cpu().tolist())

    def compute_metrics(self, results: List[float]) -> Dict[str, float]:
        """Mean LPIPS over all images."""
        return {
            'LPIPS': float(np.mean(np.asarray(results, dtype=np.float64)))
        }
