"""Vector-quantised autoencoder projector (taming VQGAN / LDM VQModel)."""
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from lmd_toolkit.registry import MODELS
from .base import BaseProjector
from .presets import VQ_PRESETS
from .quantizer import VectorQuantizer

_LATENTS = ('quantized', 'pre_quant')


@MODELS.register_module()
class VQGANProjector(BaseProjector):
    """Frozen VQ-GAN projector: taming ``VQModel`` / LDM ``vq-f*``.

    Paper: `Taming Transformers for High-Resolution Image Synthesis
    <https://arxiv.org/abs/2012.09841>`_ (LDM first-stage ``vq-f8``), the
    VQ alternative of `LMD <https://arxiv.org/abs/2312.07971>`_ §3.1.
    ``encoder -> quant_conv -> quantize -> post_quant_conv -> decoder`` with
    LDM module names (``quantize.embedding.weight`` ...).

    Which latent LMD gets: by default the quantised ``z_q`` (codebook vectors,
    what taming's ``VQModel.encode`` returns); ``decode`` then decodes its
    input as is, without snapping LMD's (continuous) predictions to codes.
    ``latent='pre_quant'`` gives the continuous ``quant_conv`` output instead
    (LDM ``VQModelInterface`` / diffusers ``VQModel.encode``) and ``decode``
    quantises first, as those do. Its stage-1 regulariser is the
    quantiser's codebook + commitment loss.

    Args:
        preset (str | dict): 'vq-f8' (n_embed 16384), 'vq-f8-n256',
            'vq-f4', 'tiny-f8', 'micro-f4' (see ``VQ_PRESETS``) or an LDM
            ``ddconfig``-style dict plus ``embed_dim`` and ``n_embed``.
            Defaults to 'vq-f8'.
        checkpoint (str, optional): Weights loaded in ``init_weights()`` by
            ``load_projector_weights``. Defaults to None.
        latent (str): 'quantized' or 'pre_quant' (see above).
            Defaults to 'quantized'.
        beta (float): Commitment weight of the quantiser loss.
            Defaults to 0.25.
        legacy (bool): taming's loss weighting with ``beta`` on the codebook
            term (see ``VectorQuantizer``). Defaults to False.
        scale_factor (float | str): Latents are ``scale_factor * z``; a
            number or ``'auto'`` (1/std of the first encoded batch).
            Defaults to 1.0.
        init_cfg (dict, optional): mmengine ``Pretrained`` init, for a file
            already in this module's key names. Defaults to None.

    Returns:
        Tensor: :meth:`encode` maps ``(B, 3, H, W)`` in [-1, 1] to
        ``(B, embed_dim, H/f, W/f)`` (codebook vectors unless ``latent=
        'pre_quant'``); :meth:`decode` the reverse.
    """

    fingerprint_options = ('latent', )
    regularizer = 'codebook'

    def __init__(self,
                 preset: Union[str, dict] = 'vq-f8',
                 checkpoint: Optional[str] = None,
                 latent: str = 'quantized',
                 beta: float = 0.25,
                 legacy: bool = False,
                 scale_factor: Union[float, str] = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(scale_factor, checkpoint, init_cfg)
        cfg = self._build_autoencoder('vq', preset)
        z, embed = cfg['z_channels'], cfg['embed_dim']
        if latent not in _LATENTS:
            raise ValueError(f'VQGANProjector: latent must be one of '
                             f'{_LATENTS}, got {latent!r}.')
        self.latent = latent
        self.quantize = VectorQuantizer(
            cfg['n_embed'], embed, beta=beta, legacy=legacy)
        self.quant_conv = nn.Conv2d(z, embed, 1)
        self.post_quant_conv = nn.Conv2d(embed, z, 1)
        self.freeze()

    def encode_pre_quant(self, x: Tensor) -> Tensor:
        """Continuous latents ``(B, embed_dim, H/f, W/f)``, with gradients."""
        return self.quant_conv(self.encoder(x))

    def encode_quantized(
            self, x: Tensor) -> Tuple[Tensor, Tensor, Dict[str, Tensor]]:
        """``(z_q, loss, info)`` of ``VectorQuantizer`` for images ``x``,
        with gradients (for stage-1 training). ``loss`` is the regulariser:
        codebook + ``beta`` * commitment (see ``VectorQuantizer``)."""
        return self.quantize(self.encode_pre_quant(x))

    def decode_codes(self, z_q: Tensor) -> Tensor:
        """Codebook vectors ``(B, embed_dim, h, w)`` -> images, as given
        (no quantisation), with gradients."""
        return self.decoder(self.post_quant_conv(z_q))

    def decode_indices(self, indices: Tensor) -> Tensor:
        """Code indices ``(B, h, w)`` -> images ``(B, 3, h*f, w*f)``."""
        with torch.no_grad():
            return self.decode_codes(self.quantize.lookup(indices))

    def _encode(self, x: Tensor) -> Tensor:
        h = self.encode_pre_quant(x)
        return h if self.latent == 'pre_quant' else self.quantize(h)[0]

    def _decode(self, z: Tensor) -> Tensor:
        if self.latent == 'pre_quant':
            z = self.quantize(z)[0]
        return self.decode_codes(z)

    def reconstruct(self,
                    x: Tensor,
                    sample_posterior: bool = True
                    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Stage-1 autoencoding with gradients (see ``BaseProjector``):
        ``x_hat`` and ``{'loss': quantiser loss, 'perplexity': ...}``
        (``sample_posterior`` has no meaning here)."""
        z_q, loss, info = self.encode_quantized(x)  # (B, d, h, w)
        return self.decode_codes(z_q), dict(
            loss=loss, perplexity=info['perplexity'])

    def last_layer(self) -> Tensor:
        return self.decoder.conv_out.weight


__all__ = ['VQGANProjector', 'VQ_PRESETS']
