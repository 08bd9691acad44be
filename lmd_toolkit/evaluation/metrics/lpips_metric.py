"""LPIPS perceptual distance, from the ``lpips`` package, fully offline."""
from typing import List, Optional

import torch
from torch import Tensor, nn

from lmd_toolkit.models.losses.lpips_net import (BACKBONE_FILES,
                                                 build_lpips_network,
                                                 check_lpips_net,
                                                 resolve_weights_file)
from lmd_toolkit.registry import METRICS
from .base import ImagePairMetric

@METRICS.register_module()
class LPIPS(ImagePairMetric):
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

    ``collect_device`` and ``prefix`` (key ``prefix/LPIPS``) as
    :class:`ImagePairMetric`.
    """

    name = 'LPIPS'
    pair_dtype = torch.float32

    def __init__(self,
                 net: str = 'alex',
                 backbone_checkpoint: Optional[str] = None,
                 pnet_rand: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
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

    def score(self, pred: Tensor, gt: Tensor) -> List[float]:
        """One LPIPS distance (float) per image; the network is built on
        the first batch, on its device."""
        if self._model is None:
            self._model = self._build(pred.device)
        self._model.to(pred.device)
        dist = self._model(pred / 127.5 - 1, gt / 127.5 - 1)  # (B, 1, 1, 1)
        return dist.flatten().double().cpu().tolist()
