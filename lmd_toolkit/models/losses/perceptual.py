"""LPIPS perceptual loss for stage-1 training, fully offline."""
from typing import Optional

import torch
from torch import Tensor, nn

from .lpips_net import (BACKBONE_FILES, build_lpips_network, check_lpips_net,
                        resolve_weights_file)


def build_lpips(net: str = 'alex',
                checkpoint: Optional[str] = None,
                pnet_rand: bool = False,
                argument: str = 'lpips_checkpoint') -> nn.Module:
    """A frozen ``lpips.LPIPS`` network whose backbone weights come from a
    local torchvision file (``checkpoint``, or torchvision's file name in
    ``$TORCH_HOME/hub/checkpoints``), never from the network.

    Args:
        net (str): 'alex', 'vgg' or 'squeeze'.
        checkpoint (str, optional): Path of the backbone weights.
        pnet_rand (bool): Random backbone, no file read (tests only).
        argument (str): The config key named in the missing-file error.

    Returns:
        nn.Module: ``lpips.LPIPS`` in eval mode without gradients; it maps
        two images ``(B, 3, H, W)`` in [-1, 1] to distances
        ``(B, 1, 1, 1)``.
    """
    check_lpips_net(net)
    path = None
    if not pnet_rand:  # fail before building anything
        try:
            path = resolve_weights_file(checkpoint, BACKBONE_FILES[net],
                                        f'LPIPS perceptual loss (net={net!r})',
                                        argument)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f'{err} Or set perceptual_weight=0 to train without the '
                'perceptual term.') from None
    return build_lpips_network(net, path)


class LPIPSLoss(nn.Module):
    """LPIPS distance per image (`Zhang et al. 2018
    <https://arxiv.org/abs/1801.03924>`_), a fixed network that passes
    gradients to its inputs only.

    The network is kept out of this module's state dict (fixed weights,
    re-read from the file, never trained or saved in checkpoints) and
    follows the input's device.

    Args:
        net (str): LPIPS backbone, 'alex', 'vgg' (taming / LDM) or
            'squeeze'. Defaults to 'vgg'.
        checkpoint (str, optional): Local torchvision weights of the
            backbone (``vgg16-397923af.pth`` ...). Defaults to None: that
            file name in ``$TORCH_HOME/hub/checkpoints``.
        pnet_rand (bool): Random backbone (no file needed). Only for tests:
            the values are not LPIPS. Defaults to False.
    """

    def __init__(self,
                 net: str = 'vgg',
                 checkpoint: Optional[str] = None,
                 pnet_rand: bool = False) -> None:
        super().__init__()
        self.net_name = net
        # Not registered as a sub-module: no state dict entries.
        self.__dict__['network'] = build_lpips(net, checkpoint, pnet_rand)

    def train(self, mode: bool = True) -> 'LPIPSLoss':
        """Stay in eval mode (fixed network)."""
        return super().train(False)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Distances of images ``(B, 3, H, W)`` in [-1, 1] -> ``(B, 1, 1,
        1)``; differentiable w.r.t. ``pred``."""
        network = self.__dict__['network']
        if next(network.parameters()).device != pred.device:
            network.to(pred.device)
        with torch.autocast(pred.device.type, enabled=False):
            return network(pred.float(), target.float())

    def extra_repr(self) -> str:
        return f'net={self.net_name!r}'
