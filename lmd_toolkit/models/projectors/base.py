"""The frozen latent-space projector contract (paper §3.1).

``BaseProjector`` owns what every projector shares: freezing, the latent
``scale_factor``, the weights file and the fingerprint that identifies the
latents. A family (``KLVAEProjector``, ``VQGANProjector``,
``IdentityProjector``) implements ``_encode`` / ``_decode`` on unscaled
latents and, for stage-1 training, :meth:`BaseProjector.reconstruct` with
its regulariser and :meth:`BaseProjector.last_layer`.

``scale_factor`` of a projector with weights is a 0-d float32 buffer (it
follows the module's device):

* a number (1.0 = official LMD, 0.18215 = Stable Diffusion): a
  non-persistent buffer; the config is the single source of truth and the
  state dict keeps exactly the LDM key names.
* ``'auto'`` (LDM ``scale_by_std``): a persistent buffer that starts at 0
  (= not calibrated). The first :meth:`BaseProjector.encode` call - in
  training, the first training batch - sets it to ``1 / std`` of the unscaled
  latents of that batch, pooled over all ranks when distributed. Because the
  buffer is in the state dict, a saved checkpoint or resumed run keeps the
  value and never recalibrates; loading weights that lack the key leaves it
  uncalibrated.

The weightless identity keeps a plain float (no device to follow, no
``'auto'``).
"""
import json
import math
from abc import ABCMeta, abstractmethod
from typing import Dict, Optional, Tuple, Union

import torch
from mmengine.dist import all_reduce
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor

from .autoencoder_layers import build_encoder_decoder
from .checkpoint import load_projector_weights
from .fingerprint import (LatentCacheMismatchError, checkpoint_sha256,
                          format_mismatch)
from .presets import resolve_config


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
        scale_factor (float | str): Latents are returned as
            ``scale_factor * z``; a number or ``'auto'`` (projectors with
            weights only, see the module docstring). Defaults to 1.0.
        checkpoint (str, optional): Weights loaded in ``init_weights()`` by
            ``load_projector_weights``. Defaults to None.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            to load weights. Defaults to None.
    """

    #: Channels of the latent (``d`` in the paper).
    latent_channels: int
    #: Spatial down-sampling factor between image and latent (``f``).
    downsample_factor: int
    #: Preset name (``'custom'`` for a dict) and resolved architecture
    #: config, recorded in :meth:`fingerprint`; None without architecture.
    preset: Optional[str] = None
    arch: Optional[dict] = None
    #: False (default): frozen; True after :meth:`unfreeze`.
    trainable: bool = False
    #: Whether training reads this projector's latents from a cache
    #: (False for the identity: its "latents" are the images).
    cacheable: bool = True
    #: Attributes that change the latents, recorded in :meth:`fingerprint`.
    fingerprint_options: Tuple[str, ...] = ()
    #: Whether ``scale_factor`` is a buffer (projectors with weights) or a
    #: plain float (the weightless identity; no ``'auto'``).
    scale_is_buffer: bool = True
    #: Stage-1 regulariser returned by :meth:`reconstruct` (``'kl'``,
    #: ``'codebook'``) or None when there is nothing to train.
    regularizer: Optional[str] = None

    def __init__(self,
                 scale_factor: Union[float, str] = 1.0,
                 checkpoint: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.checkpoint = checkpoint
        self.auto_scale = isinstance(scale_factor, str)
        if self.auto_scale and (scale_factor != 'auto'
                                or not self.scale_is_buffer):
            allowed = "a number or 'auto'" if self.scale_is_buffer else \
                'a number'
            raise ValueError(f'{type(self).__name__}: scale_factor must be '
                             f'{allowed}, got {scale_factor!r}.')
        value = 0.0 if self.auto_scale else float(scale_factor)
        if not self.scale_is_buffer:
            self.scale_factor = value
            return
        if not self.auto_scale and not (math.isfinite(value) and value > 0):
            raise ValueError(f'scale_factor must be > 0, got {scale_factor}.')
        self.register_buffer(
            'scale_factor',
            torch.tensor(value, dtype=torch.float32),
            persistent=self.auto_scale)

    def _build_autoencoder(self, family: str,
                           preset: Union[str, dict]) -> dict:
        """Set ``preset``, ``arch`` and the LDM ``encoder`` / ``decoder`` of
        a KL (``'kl'``) or VQ (``'vq'``) family, its ``latent_channels``
        (``embed_dim``) and ``downsample_factor``; return the arch."""
        self.preset = preset if isinstance(preset, str) else 'custom'
        self.arch = arch = resolve_config(family, preset)
        self.encoder, self.decoder = build_encoder_decoder(
            arch, double_z=family == 'kl')
        self.latent_channels = arch['embed_dim']
        self.downsample_factor = 2**(len(arch['ch_mult']) - 1)
        return arch

    # ------------------------------------------------------ identity
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
        path = self.checkpoint
        init_cfg = self.init_cfg
        if path is None and isinstance(init_cfg, dict) and \
                init_cfg.get('type') == 'Pretrained':
            path = init_cfg.get('checkpoint')
        scale = float(self.scale_factor)
        fingerprint = dict(
            type=type(self).__name__,
            preset=self.preset,
            arch=self.arch,
            options={name: getattr(self, name)
                     for name in self.fingerprint_options},
            checkpoint=path,
            checkpoint_sha256=None if path is None else checkpoint_sha256(
                path),
            scale_factor=None if self.auto_scale and scale <= 0 else scale,
            scale_factor_mode='auto' if self.auto_scale else 'fixed')
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
        if self.auto_scale and not self.is_calibrated() and \
                source.get('scale_factor') is not None:
            self.scale_factor.fill_(float(source['scale_factor']))
            print_log(
                f"{type(self).__name__}: scale_factor='auto' set to "
                f"{source['scale_factor']:g}, the value the {where} was "
                'encoded with.',
                logger='current')
        message = format_mismatch(source, self.fingerprint(), where)
        if message:
            raise LatentCacheMismatchError(message)

    # ------------------------------------------------------ freezing
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
        """Apply ``init_cfg``, then load ``checkpoint`` if given; freeze
        unless :meth:`unfreeze` was called (stage-1 training)."""
        super().init_weights()
        if self.checkpoint is not None:
            load_projector_weights(self, self.checkpoint)
        if not self.trainable:
            self.freeze()

    # ------------------------------------------------------ scale factor
    def is_calibrated(self) -> bool:
        """False only for an ``'auto'`` factor not yet computed."""
        return not self.auto_scale or bool(self.scale_factor > 0)

    @torch.no_grad()
    def calibrate_scale_factor(self, x: Tensor,
                               pool_ranks: bool = True) -> float:
        """Set ``scale_factor = 1 / std`` over all elements of the unscaled
        latents of images ``x`` (pooled over ranks unless ``pool_ranks`` is
        False: then a collective-free call of one rank); return it. Only for
        ``'auto'``."""
        if not self.auto_scale:
            raise RuntimeError("calibrate_scale_factor needs scale_factor="
                               "'auto'; this projector has a fixed "
                               f'{float(self.scale_factor)}.')
        with _fp32(x):
            z = self._encode(x.float()).double()
        stats = torch.stack([
            z.sum(), z.pow(2).sum(),
            torch.tensor(float(z.numel()), dtype=z.dtype, device=z.device)
        ])
        if pool_ranks:
            all_reduce(stats, op='sum')  # no-op when not distributed
        total, total_sq, n = stats.tolist()
        var = (total_sq - total * total / n) / max(n - 1.0, 1.0)
        if not var > 0:
            raise RuntimeError('scale_factor=auto: the calibration latents '
                               'have zero variance; use a real image batch.')
        self.scale_factor.fill_(1.0 / math.sqrt(var))
        return float(self.scale_factor)

    # ------------------------------------------------------ encode / decode
    @abstractmethod
    def _encode(self, x: Tensor) -> Tensor:
        """Map images ``(B, 3, H, W)`` in [-1, 1] to unscaled latents."""

    @abstractmethod
    def _decode(self, z: Tensor) -> Tensor:
        """Map unscaled latents ``(B, d, h, w)`` to images in [-1, 1]."""

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(B, 3, H, W)`` in [-1, 1] -> latents ``(B, d, H/f, W/f)``
        multiplied by ``scale_factor``; calibrates an ``'auto'`` factor on
        the first call."""
        if not self.is_calibrated():
            self.calibrate_scale_factor(x)
        with torch.no_grad(), _fp32(x):
            return self._encode(x.float()) * self.scale_factor

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, d, h, w)`` (scaled) -> images ``(B, 3, h*f, w*f)``
        in about [-1, 1]."""
        if not self.is_calibrated():
            raise RuntimeError(
                f"{type(self).__name__}: scale_factor='auto' is not "
                'calibrated yet. Encode a training batch first, call '
                'calibrate_scale_factor(images), or load a checkpoint of '
                'this projector that holds the `scale_factor` buffer.')
        with torch.no_grad(), _fp32(z):
            return self._decode(z.float() / self.scale_factor)

    # ------------------------------------------------------ stage 1
    def reconstruct(self,
                    x: Tensor,
                    sample_posterior: bool = True
                    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Autoencode images ``(B, 3, H, W)`` in [-1, 1] with gradients,
        unscaled (stage-1 training).

        Args:
            x (Tensor): Images ``(B, 3, H, W)`` in [-1, 1].
            sample_posterior (bool): Decode a posterior sample instead of
                its mean (KL-VAE; ignored by the others).

        Returns:
            tuple: ``x_hat (B, 3, H, W)`` and the :attr:`regularizer`
            terms: ``loss`` (unweighted scalar) and extra log values.
        """
        raise NotImplementedError(
            f'{type(self).__name__} has no stage-1 training.')

    def last_layer(self) -> Tensor:
        """The decoder's output weight, where the adaptive GAN weight of
        stage-1 training is measured."""
        raise NotImplementedError(f'{type(self).__name__} has no decoder.')

    def extra_repr(self) -> str:
        scale = f'{float(self.scale_factor):g}'
        preset = '' if self.preset is None else f'preset={self.preset!r}, '
        return (f'{preset}f={self.downsample_factor}, latent_channels='
                f'{self.latent_channels}, scale_factor='
                f"{'auto:' + scale if self.auto_scale else scale}")


def _fp32(t: Tensor) -> torch.autocast:
    """An autocast-disabled context on the tensor's device type."""
    return torch.autocast(device_type=t.device.type, enabled=False)
