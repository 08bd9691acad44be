"""Batch uint8 images and map them to the projector's [-1, 1] range."""
from typing import Optional, Union

import torch
from mmengine.model import BaseDataPreprocessor

from lmd_toolkit.registry import MODELS


@MODELS.register_module()
class LMDDataPreprocessor(BaseDataPreprocessor):
    """Stack, move to device, cast to float and map [0, 255] -> [-1, 1].

    Accepts what mmpretrain's ``PackInputs`` followed by ``default_collate``
    (a ``(B, 3, H, W)`` tensor) or ``pseudo_collate`` (a list of
    ``(3, H, W)`` tensors of equal size) produce.

    Args:
        to_rgb (bool): Flip the channel order (BGR inputs -> RGB). The
            toolkit's datasets already give RGB. Defaults to False.
        non_blocking (bool): Non-blocking host-to-device copies.
            Defaults to False.
    """

    def __init__(self,
                 to_rgb: bool = False,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        self.to_rgb = to_rgb

    def forward(self, data: dict, training: bool = False) -> dict:
        """Preprocess one batch.

        Args:
            data (dict): ``inputs`` (uint8 ``(B, 3, H, W)`` tensor or list
                of ``(3, H, W)``) and optional ``data_samples``.
            training (bool): Unused (no batch augmentation).

        Returns:
            dict: ``inputs`` float ``(B, 3, H, W)`` in [-1, 1] on the model
            device, and ``data_samples`` unchanged (None when absent).
        """
        data = self.cast_data(data)
        inputs: Union[torch.Tensor, list] = data['inputs']
        if isinstance(inputs, (list, tuple)):
            sizes = {tuple(img.shape) for img in inputs}
            if len(sizes) != 1:
                raise ValueError(
                    f'LMDDataPreprocessor: images of different sizes {sizes} '
                    f'cannot be batched; add a Resize/CenterCrop transform '
                    f'to the pipeline.')
            inputs = torch.stack(list(inputs))
        if inputs.ndim != 4 or inputs.shape[1] != 3:
            raise ValueError(f'LMDDataPreprocessor: expected inputs of shape '
                             f'(B, 3, H, W), got {tuple(inputs.shape)}.')
        if self.to_rgb:
            inputs = inputs.flip(1)
        inputs = inputs.float() / 127.5 - 1.0
        samples: Optional[list] = data.get('data_samples')
        return dict(inputs=inputs, data_samples=samples)
