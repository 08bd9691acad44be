"""KL-regularised autoencoder projector (LDM AutoencoderKL, SD v1 VAE)."""
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from lmd_toolkit.registry import MODELS
from .autoencoder_base import AutoencoderProjector
from .presets import KL_PRESETS


@MODELS.register_module()
class KLVAEProjector(AutoencoderProjector):
    """Frozen KL-VAE projector: LDM / Stable Diffusion v1 ``AutoencoderKL``.

    Paper: `High-Resolution Image Synthesis with Latent Diffusion Models
    <https://arxiv.org/abs/2112.10752>`_, used by `LMD
    <https://arxiv.org/abs/2312.07971>`_ as the projector (``kl-f8``, the SD
    v1 VAE: 256x256x3 -> 32x32x4). ``encoder -> quant_conv`` gives the
    moments of a diagonal Gaussian (log-variance clamped to [-30, 20]);
    ``post_quant_conv -> decoder`` maps a latent back. Module names match
    LDM checkpoints, so ``decoder.conv_out`` is the last layer.

    Args:
        preset (str | dict): 'kl-f8' (SD v1 / LDM, 83.65 M parameters),
            'kl-f4', 'tiny-f8', 'micro-f4' (see ``KL_PRESETS``) or an LDM
            ``ddconfig``-style dict plus ``embed_dim``. Defaults to 'kl-f8'.
        checkpoint (str, optional): Weights loaded in ``init_weights()`` by
            ``load_projector_weights`` (LDM, SD, bare or diffusers formats).
            Defaults to None.
        sample_posterior (bool): Encode to a sample of the posterior instead
            of its mean (the official LMD uses the mean). Defaults to False.
        scale_factor (float | str): Latents are ``scale_factor * z``: 1.0
            (official LMD), 0.18215 (SD convention) or ``'auto'`` (1/std of
            the first encoded batch, stored in the state dict).
            Defaults to 1.0.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            for weights already in this module's key names. Defaults to None.

    Returns:
        Tensor: :meth:`encode` maps ``(B, 3, H, W)`` in [-1, 1] to
        ``(B, embed_dim, H/f, W/f)``; :meth:`decode` the reverse.
    """

    fingerprint_options = ('sample_posterior', )

    def __init__(self,
                 preset: Union[str, dict] = 'kl-f8',
                 checkpoint: Optional[str] = None,
                 sample_posterior: bool = False,
                 scale_factor: Union[float, str] = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__('kl', preset, checkpoint, scale_factor, init_cfg)
        self.sample_posterior = sample_posterior
        cfg = self.arch
        z, embed = cfg['z_channels'], cfg['embed_dim']
        self.quant_conv = nn.Conv2d(2 * z, 2 * embed, 1)
        self.post_quant_conv = nn.Conv2d(embed, z, 1)
        self.freeze()

    def encode_posterior(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Posterior of images ``(B, 3, H, W)`` in [-1, 1], with gradients.

        Returns:
            tuple: ``mean`` and ``logvar``, each ``(B, embed_dim, H/f, W/f)``
            (logvar clamped to [-30, 20]).
        """
        moments = self.quant_conv(self.encoder(x))  # (B, 2 * embed, h, w)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def _encode(self, x: Tensor) -> Tensor:
        mean, logvar = self.encode_posterior(x)
        if not self.sample_posterior:
            return mean
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)

    def _decode(self, z: Tensor) -> Tensor:
        return self.decoder(self.post_quant_conv(z))


__all__ = ['KLVAEProjector', 'KL_PRESETS']
