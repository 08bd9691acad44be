"""What the KL-VAE and VQ-GAN projectors share: the Encoder / Decoder pair
built from a preset, checkpoint loading, and the ``scale_factor`` buffer.

``scale_factor`` is a 0-d float32 buffer (it follows the module's device and
``BaseProjector.encode`` / ``decode`` use it as is):

* a number (1.0 = official LMD, 0.18215 = Stable Diffusion): a
  non-persistent buffer; the config is the single source of truth and the
  state dict keeps exactly the LDM key names.
* ``'auto'`` (LDM ``scale_by_std``): a persistent buffer that starts at 0
  (= not calibrated). The first :meth:`encode` call - in training, the first
  training batch - sets it to ``1 / std`` of the unscaled latents of that
  batch, pooled over all ranks when distributed. Because the buffer is in the
  state dict, a saved checkpoint or resumed run keeps the value and never
  recalibrates; loading weights that lack the key leaves it uncalibrated.
"""
import math
from typing import Optional, Union

import torch
from mmengine.dist import all_reduce
from torch import Tensor

from .autoencoder_layers import Decoder, Encoder
from .base import BaseProjector
from .presets import resolve_config


class AutoencoderProjector(BaseProjector):
    """Base of :class:`KLVAEProjector` and :class:`VQGANProjector` (not
    registered). Subclasses add their bottleneck modules and implement
    ``_encode`` / ``_decode``.

    Args:
        family (str): 'kl' (double_z encoder) or 'vq'.
        preset (str | dict): A preset name of the family or a config dict.
        checkpoint (str, optional): Loaded in ``init_weights()``.
        scale_factor (float | str): A number or ``'auto'``.
        init_cfg (dict, optional): mmengine ``Pretrained`` init config.
    """

    def __init__(self,
                 family: str,
                 preset: Union[str, dict],
                 checkpoint: Optional[str] = None,
                 scale_factor: Union[float, str] = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.preset = preset if isinstance(preset, str) else 'custom'
        self.arch = cfg = resolve_config(family, preset)
        self.checkpoint = checkpoint
        self._init_scale_factor(scale_factor)
        net = dict(
            ch=cfg['ch'],
            ch_mult=cfg['ch_mult'],
            num_res_blocks=cfg['num_res_blocks'],
            z_channels=cfg['z_channels'],
            resolution=cfg['resolution'],
            attn_resolutions=cfg['attn_resolutions'],
            dropout=cfg['dropout'],
            num_groups=cfg['norm_groups'])
        self.encoder = Encoder(
            in_channels=cfg['in_channels'], double_z=family == 'kl', **net)
        self.decoder = Decoder(out_ch=cfg['out_ch'], **net)
        self.latent_channels = cfg['embed_dim']
        self.downsample_factor = 2**(len(cfg['ch_mult']) - 1)

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then load ``checkpoint`` if given; freeze
        unless :meth:`unfreeze` was called (stage-1 training)."""
        super().init_weights()
        if self.checkpoint is not None:
            from .checkpoint import load_projector_weights
            load_projector_weights(self, self.checkpoint)
        if not self.trainable:
            self.freeze()

    # ------------------------------------------------------ scale factor
    def _init_scale_factor(self, scale_factor: Union[float, str]) -> None:
        """Replace the float set by ``BaseProjector`` by a buffer."""
        self.auto_scale = isinstance(scale_factor, str)
        if self.auto_scale and scale_factor != 'auto':
            raise ValueError("scale_factor must be a number or 'auto', got "
                             f'{scale_factor!r}.')
        value = 0.0 if self.auto_scale else float(scale_factor)
        if not self.auto_scale and not (math.isfinite(value) and value > 0):
            raise ValueError(f'scale_factor must be > 0, got {scale_factor}.')
        del self.scale_factor
        self.register_buffer(
            'scale_factor',
            torch.tensor(value, dtype=torch.float32),
            persistent=self.auto_scale)

    def is_calibrated(self) -> bool:
        """False only for an ``'auto'`` factor not yet computed."""
        return bool(self.scale_factor > 0)

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
        with torch.autocast(x.device.type, enabled=False):
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

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(B, 3, H, W)`` in [-1, 1] -> ``scale_factor * z``
        ``(B, d, H/f, W/f)``; calibrates an ``'auto'`` factor on the first
        call."""
        if not self.is_calibrated():
            self.calibrate_scale_factor(x)
        return super().encode(x)

    def decode(self, z: Tensor) -> Tensor:
        """Scaled latents ``(B, d, h, w)`` -> images ``(B, 3, h*f, w*f)``
        in about [-1, 1]."""
        if not self.is_calibrated():
            raise RuntimeError(
                f"{type(self).__name__}: scale_factor='auto' is not "
                'calibrated yet. Encode a training batch first, call '
                'calibrate_scale_factor(images), or load a checkpoint of '
                'this projector that holds the `scale_factor` buffer.')
        return super().decode(z)

    def extra_repr(self) -> str:
        scale = f'{float(self.scale_factor):g}'
        return (f'preset={self.preset!r}, f={self.downsample_factor}, '
                f'latent_channels={self.latent_channels}, scale_factor='
                f"{'auto:' + scale if self.auto_scale else scale}")
