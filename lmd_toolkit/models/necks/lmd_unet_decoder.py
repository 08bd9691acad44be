"""The neck of ``LMDUNet``: the output norm and conv that turn the U-Net's
features into the predicted latent patches."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from lmd_toolkit.registry import MODELS
from ..layers import is_pretrained_cfg, patchify
from ..projectors.autoencoder_layers import group_norm


@MODELS.register_module()
class LMDUNetDecoder(BaseModule):
    """Prediction step of the "w/o MAE" ablation: GroupNorm -> SiLU ->
    3x3 conv to ``d`` channels -> ``p x p`` patches.

    Paper: `LMD <https://arxiv.org/abs/2312.07971>`_ (Table 5). The
    algorithm derives every argument but ``init_cfg`` from ``LMDUNet``
    (``embed_dims``, ``in_channels``, ``patch_size``, ``norm_groups``).

    Args:
        embed_dims (int): Channels ``c`` of the U-Net features.
        in_channels (int): Latent channels ``d``.
        patch_size (int): Patch size ``p`` of the prediction tokens.
        norm_groups (int): GroupNorm groups. Defaults to 8.
        init_cfg (dict, optional): ``dict(type='Pretrained', ...)`` to load
            weights. Defaults to None.
    """

    def __init__(self,
                 embed_dims: int,
                 in_channels: int,
                 patch_size: int,
                 norm_groups: int = 8,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.norm_out = group_norm(embed_dims, norm_groups)
        self.conv_out = nn.Conv2d(embed_dims, in_channels, 3, padding=1)

    def init_weights(self) -> None:
        """A zero output layer (the U-Net starts by predicting 0), unless
        ``init_cfg`` loads a checkpoint."""
        super().init_weights()
        if is_pretrained_cfg(self.init_cfg):
            return
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor, ids_restore: Tensor) -> Tensor:
        """Features ``(B, c, h, w)`` -> predictions ``(B, L, p*p*d)``.

        Args:
            x (Tensor): ``LMDUNet`` features ``(B, c, h, w)``.
            ids_restore (Tensor): ``(B, L)``; unused (the U-Net keeps every
                token in place), part of the neck contract.

        Returns:
            Tensor: ``(B, L, p*p*d)`` in token order.
        """
        pred = self.conv_out(F.silu(self.norm_out(x)))  # (B, d, h, w)
        return patchify(pred, self.patch_size)
