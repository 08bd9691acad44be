"""KL-regularised autoencoder projector (LDM AutoencoderKL, SD v1 VAE)."""
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from lmd_toolkit.registry import MODELS
from .base import BaseProjector
from .presets import KL_PRESETS


@MODELS.register_module()
class KLVAEProjector(BaseProjector):
    """Frozen KL-VAE projector: LDM / Stable Diffusion v1 ``AutoencoderKL``.

    Paper: `High-Resolution Image Synthesis with Latent Diffusion Models
    <https://arxiv.org/abs/2112.10752>`_, used by `LMD
    <https://arxiv.org/abs/2312.07971>`_ as the projector (``kl-f8``, the SD
    v1 VAE: 256x256x3 -> 32x32x4). ``encoder -> quant_conv`` gives the
    moments of a diagonal Gaussian (log-variance clamped to [-30, 20]);
    ``post_quant_conv -> decoder`` maps a latent back. Module names match
    LDM checkpoints, so ``decoder.conv_out`` is the last layer. Its stage-1
    regulariser is the KL divergence of the posterior from N(0, I).

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
        Tensor: :meth:`encode` maps ``(B, 3, H, W)`` in [-1, 1] to the
        posterior mean (or a sample) ``(B, embed_dim, H/f, W/f)``;
        :meth:`decode` the reverse.
    """

    fingerprint_options = ('sample_posterior', )
    regularizer = 'kl'

    def __init__(self,
                 preset: Union[str, dict] = 'kl-f8',
                 checkpoint: Optional[str] = None,
                 sample_posterior: bool = False,
                 scale_factor: Union[float, str] = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(scale_factor, checkpoint, init_cfg)
        cfg = self._build_autoencoder('kl', preset)
        z, embed = cfg['z_channels'], cfg['embed_dim']
        self.sample_posterior = sample_posterior
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

    def kl_loss(self, mean: Tensor, logvar: Tensor) -> Tensor:
        """The stage-1 regulariser: ``KL(N(mean, exp(logvar)) || N(0, I))``
        summed over the latent elements of each image, averaged over the
        batch (LDM ``kl_loss``), unweighted.

        Returns:
            Tensor: A scalar.
        """
        return gaussian_kl(mean, logvar).sum() / mean.shape[0]

    def _encode(self, x: Tensor) -> Tensor:
        mean, logvar = self.encode_posterior(x)
        return _sample(mean, logvar) if self.sample_posterior else mean

    def _decode(self, z: Tensor) -> Tensor:
        return self.decoder(self.post_quant_conv(z))

    def reconstruct(self,
                    x: Tensor,
                    sample_posterior: bool = True
                    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Stage-1 autoencoding with gradients (see ``BaseProjector``):
        ``x_hat`` and ``{'loss': kl_loss}``."""
        mean, logvar = self.encode_posterior(x)  # (B, d, h, w) each
        z = _sample(mean, logvar) if sample_posterior else mean
        kl = self.kl_loss(mean, logvar)
        return self._decode(z), dict(loss=kl)

    def last_layer(self) -> Tensor:
        return self.decoder.conv_out.weight


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mean, exp(logvar)) || N(0, I))`` summed over all latent
    elements of each sample (LDM ``DiagonalGaussianDistribution.kl``)::

        0.5 * sum(mean^2 + exp(logvar) - 1 - logvar)

    Args:
        mean (Tensor): Posterior means ``(B, d, h, w)``.
        logvar (Tensor): Posterior log-variances, same shape.

    Returns:
        Tensor: ``(B,)``. LDM's loss term is its sum over the batch divided
        by ``B`` (i.e. the batch mean), times ``kl_weight``.
    """
    per_element = mean.pow(2) + torch.exp(logvar) - 1.0 - logvar
    return 0.5 * per_element.flatten(1).sum(1)


def _sample(mean: Tensor, logvar: Tensor) -> Tensor:
    """A sample of the diagonal Gaussian posterior."""
    return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


__all__ = ['KLVAEProjector', 'KL_PRESETS', 'gaussian_kl']
