"""PatchGAN discriminator of pix2pix, used by VQGAN / LDM stage-1."""
from typing import List

import torch.nn as nn
from torch import Tensor

from lmd_toolkit.registry import MODELS

_NORMS = ('batch', 'group')


@MODELS.register_module()
class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator: one real/fake logit per overlapping patch.

    Paper: `Image-to-Image Translation with Conditional Adversarial Networks
    <https://arxiv.org/abs/1611.07004>`_ (pix2pix), the discriminator of
    `VQGAN <https://arxiv.org/abs/2012.09841>`_ and LDM's autoencoders.
    ``n_layers`` 4x4 convolutions of stride 2 (widths ``ndf * min(2^i, 8)``,
    the first without normalisation), one 4x4 stride-1 convolution, then a
    4x4 stride-1 convolution to one channel; LeakyReLU(0.2) after each
    hidden layer. Convolutions followed by BatchNorm have no bias. Weights
    ~ N(0, 0.02), norm scales ~ N(1, 0.02) (pix2pix / taming init).

    Args:
        in_channels (int): Image channels. Defaults to 3.
        ndf (int): Width of the first layer. Defaults to 64.
        n_layers (int): Stride-2 convolutions. Defaults to 3.
        norm (str): 'batch' (BatchNorm, taming / LDM) or 'group'
            (GroupNorm, batch-size independent). Defaults to 'batch'.
        num_groups (int): GroupNorm groups when ``norm='group'``.
            Defaults to 32.

    Returns:
        Tensor: :meth:`forward` maps ``(B, C, H, W)`` to logits
        ``(B, 1, H / 2^n_layers - 2, W / 2^n_layers - 2)`` (for ``H, W``
        divisible by ``2^n_layers``; 256 -> 30 with 3 layers).
    """

    def __init__(self,
                 in_channels: int = 3,
                 ndf: int = 64,
                 n_layers: int = 3,
                 norm: str = 'batch',
                 num_groups: int = 32) -> None:
        super().__init__()
        if norm not in _NORMS:
            raise ValueError(f'NLayerDiscriminator: norm must be one of '
                             f'{_NORMS}, got {norm!r}.')
        if n_layers < 1:
            raise ValueError(f'NLayerDiscriminator: n_layers must be >= 1, '
                             f'got {n_layers}.')
        self.n_layers = n_layers
        widths = [ndf * min(2**i, 8) for i in range(n_layers + 1)]
        if norm == 'group':
            bad = [w for w in widths[1:] if w % num_groups]
            if bad:
                raise ValueError(
                    f'NLayerDiscriminator: widths {bad} (from ndf={ndf}) do '
                    f'not divide by num_groups={num_groups}; change either.')
        layers: List[nn.Module] = [
            nn.Conv2d(in_channels, widths[0], 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True)
        ]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1  # the last hidden one: stride 1
            layers += [
                nn.Conv2d(widths[i - 1], widths[i], 4, stride=stride,
                          padding=1, bias=norm != 'batch'),
                (nn.BatchNorm2d(widths[i]) if norm == 'batch' else
                 nn.GroupNorm(num_groups, widths[i])),
                nn.LeakyReLU(0.2, inplace=True)
            ]
        layers.append(nn.Conv2d(widths[n_layers], 1, 4, stride=1, padding=1))
        self.main = nn.Sequential(*layers)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> patch logits ``(B, 1, h, w)``."""
        return self.main(x)
