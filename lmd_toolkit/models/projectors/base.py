"""The frozen latent-space projector interface (paper §3.1)."""
import json
from abc import ABCMeta, abstractmethod
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

from .fingerprint import (LatentCacheMismatchError, checkpoint_sha256,
                          format_mismatch)


class BaseProjector(BaseModule, metaclass=ABCMeta):
    """Frozen image <-> latent projector used as a target generator.

    Subclasses implement :meth:`_encode` and :meth:`_decode` on images in
    ``[-1, 1]``. The public :meth:`encode` / :meth:`decode` run without
    gradients, outside autocast, in fp32 and multiply / divide by
    ``scale_factor``, so every projector behaves the same to the algorithm.
    The module never leaves eval mode and none of its parameters train,
    unless :meth:`unfreeze` is called (stage-1 training of the projector
    itself, ``AutoencoderTrainer``): then ``train()`` works as usual and
    parameters get gradients (``encode`` / ``decode`` still run without).

    Args:
        scale_factor (float): Latents are returned as ``scale_factor * z``.
            Defaults to 1.0.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            to load weights. Defaults to None.
    """

    #: Channels of the latent (``d`` in the paper).
    latent_channels: int
    #: Spatial down-sampling factor between image and latent (``f``).
    downsample_factor: int

    def __init__(self,
                 scale_factor: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.scale_factor = float(scale_factor)

    #: False (default): frozen; True after :meth:`unfreeze`.
    trainable: bool = False
    #: Whether training reads this projector's latents from a cache
    #: (False for the identity: its "latents" are the images).
    cacheable: bool = True
    #: Attributes that change the latents, recorded in :meth:`fingerprint`.
    fingerprint_options: Tuple[str, ...] = ()

    def fingerprint(self) -> dict:
        """What determines this projector's latents, as JSON-ready values.

        Returns:
            dict: ``type`` (class name), ``preset`` (name, ``'custom'`` or
            None), ``arch`` (resolved architecture or None), ``options``
            (the :attr:`fingerprint_options` and their values),
            ``checkpoint`` (path or None), ``checkpoint_sha256`` (None
            without weights), ``scale_factor`` (the value in use; None
            while an ``'auto'`` factor is not calibrated) and
            ``scale_factor_mode`` (``'fixed'`` or ``'auto'``).
        """
        path = getattr(self, 'checkpoint', None)
        init_cfg = self.init_cfg
        if path is None and isinstance(init_cfg, dict) and \
                init_cfg.get('type') == 'Pretrained':
            path = init_cfg.get('checkpoint')
        auto = bool(getattr(self, 'auto_scale', False))
        scale = float(self.scale_factor)
        fingerprint = dict(
            type=type(self).__name__,
            preset=getattr(self, 'preset', None),
            arch=getattr(self, 'arch', None),
            options={name: getattr(self, name)
                     for name in self.fingerprint_options},
            checkpoint=path,
            checkpoint_sha256=None if path is None else checkpoint_sha256(
                path),
            scale_factor=None if auto and scale <= 0 else scale,
            scale_factor_mode='auto' if auto else 'fixed')
        return json.loads(json.dumps(fingerprint))  # tuples -> lists

    def check_fingerprint(self, source: dict,
                          where: str = 'latent cache') -> None:
        """Raise unless ``source`` (the fingerprint latents were made with)
        matches :meth:`fingerprint`.

        An ``'auto'`` scale factor that is not calibrated yet takes the
        source's value (logged): the latents were made with it.

        Raises:
            LatentCacheMismatchError: naming each differing field with both
                values, and both fingerprints.
        """
        if getattr(self, 'auto_scale', False) and \
                not self.is_calibrated() and \
                source.get('scale_factor') is not None:
            self.scale_factor.fill_(float(source['scale_factor']))
            from mmengine.logging import print_log
            print_log(
                f"{type(self).__name__}: scale_factor='auto' set to "
                f"{source['scale_factor']:g}, the value the {where} was "
                'encoded with.',
                logger='current')
        message = format_mismatch(source, self.fingerprint(), where)
        if message:
            raise LatentCacheMismatchError(message)

    def freeze(self) -> 'BaseProjector':
        """Disable gradients and switch to eval mode, for good."""
        self.trainable = False
        self.requires_grad_(False)
        super().train(False)
        return self

    def unfreeze(self) -> 'BaseProjector':
        """Make the projector trainable (stage-1): enable gradients and
        train mode; ``train()`` / ``init_weights()`` then keep it so."""
        self.trainable = True
        self.requires_grad_(True)
        super().train(True)
        return self

    def train(self, mode: bool = True) -> 'BaseProjector':
        """Stay in eval mode whatever the caller asks, unless unfrozen."""
        return super().train(mode and self.trainable)

    def init_weights(self) -> None:
        super().init_weights()
        if not self.trainable:
            self.freeze()

    @abstractmethod
    def _encode(self, x: Tensor) -> Tensor:
        """Map images ``(B, 3, H, W)`` in [-1, 1] to unscaled latents."""

    @abstractmethod
    def _decode(self, z: Tensor) -> Tensor:
        """Map unscaled latents ``(B, d, h, w)`` to images in [-1, 1]."""

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(B, 3, H, W)`` in [-1, 1] -> latents ``(B, d, H/f, W/f)``
        multiplied by ``scale_factor``."""
        with torch.no_grad(), _fp32(x):
            return self._encode(x.float()) * self.scale_factor

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, d, h, w)`` (scaled) -> images ``(B, 3, h*f, w*f)``
        in about [-1, 1]."""
        with torch.no_grad(), _fp32(z):
            return self._decode(z.float() / self.scale_factor)


def _fp32(t: Tensor) -> torch.autocast:
    """An autocast-disabled context on the tensor's device type."""
    return torch.autocast(device_type=t.device.type, enabled=False)
