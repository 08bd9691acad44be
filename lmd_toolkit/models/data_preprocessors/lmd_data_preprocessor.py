"""Batch uint8 images and map them to the projector's [-1, 1] range, or
pass cached latents through."""
from typing import Any, Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor

from lmd_toolkit.registry import MODELS


@MODELS.register_module()
class LMDDataPreprocessor(BaseDataPreprocessor):
    """Stack, move to device, cast to float and map [0, 255] -> [-1, 1].

    Accepts what mmpretrain's ``PackInputs`` followed by ``default_collate``
    (a ``(B, 3, H, W)`` tensor) or ``pseudo_collate`` (a list of
    ``(3, H, W)`` tensors of equal size) produce.

    Latent batches: when every data sample's metainfo says
    ``input_type='latent'`` (``LatentCacheDataset`` sets it), the inputs are
    projector latents ``(B, d, h, w)``: they are stacked, moved and cast to
    float32 only (no rescaling, no channel flip), and
    ``LatentMaskingDiffusion`` skips ``projector.encode`` for them. See
    :func:`is_latent_batch`.

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
        samples: Optional[list] = data.get('data_samples')
        latent = is_latent_batch(samples)
        if isinstance(inputs, (list, tuple)):
            sizes = {tuple(img.shape) for img in inputs}
            if len(sizes) != 1:
                raise ValueError(
                    f'LMDDataPreprocessor: images of different sizes {sizes} '
                    f'cannot be batched; add a Resize/CenterCrop transform '
                    f'to the pipeline.')
            inputs = torch.stack(list(inputs))
        if latent:
            if inputs.ndim != 4:
                raise ValueError(f'LMDDataPreprocessor: expected latents of '
                                 f'shape (B, d, h, w), got '
                                 f'{tuple(inputs.shape)}.')
            return dict(inputs=inputs.float(), data_samples=samples)
        if inputs.ndim != 4 or inputs.shape[1] != 3:
            raise ValueError(f'LMDDataPreprocessor: expected inputs of shape '
                             f'(B, 3, H, W), got {tuple(inputs.shape)}.')
        if self.to_rgb:
            inputs = inputs.flip(1)
        inputs = inputs.float() / 127.5 - 1.0
        return dict(inputs=inputs, data_samples=samples)


def _input_type(sample: Any) -> Optional[str]:
    """``input_type`` of a data sample (dict or ``DataSample``), if any."""
    if isinstance(sample, dict):
        return sample.get('input_type')
    metainfo = getattr(sample, 'metainfo', None)
    return metainfo.get('input_type') if isinstance(metainfo, dict) else None


def is_latent_batch(data_samples: Optional[Sequence]) -> bool:
    """True when every sample says ``input_type='latent'`` (cached projector
    latents), False when none does (images); raises on a mixed batch."""
    if not data_samples:
        return False
    flags = [_input_type(s) == 'latent' for s in data_samples]
    if all(flags):
        return True
    if any(flags):
        raise ValueError(
            'A batch mixes cached latents (input_type=\'latent\') and '
            'images; use one kind of dataset per dataloader.')
    return False
