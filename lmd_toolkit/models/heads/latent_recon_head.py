"""Masked latent reconstruction loss (paper §3.2.3, "LIR")."""
from typing import Tuple

from mmengine.model import BaseModule
from torch import Tensor

from lmd_toolkit.registry import MODELS
from ..layers import patchify, unpatchify


@MODELS.register_module()
class LatentReconstructionHead(BaseModule):
    """MSE between predicted and true latent patches, on masked tokens only.

    Paper: `LMD <https://arxiv.org/abs/2312.07971>`_ (latent image
    reconstruction target). The target is the patchified latent, optionally
    normalised per patch as ``(t - mean) / sqrt(var + eps)``. Like MAE's
    ``norm_pix_loss``, ``var`` is the UNBIASED variance (``Tensor.var``
    default, divisor ``N - 1``, ``N = p * p * d``); therefore ``N >= 2``.

    Args:
        patch_size (int): Latent patch size ``p``.
        norm_target (bool): Normalise each target patch by its own mean and
            variance. Defaults to True.
        eps (float): Added to the variance. Defaults to 1e-6.
    """

    def __init__(self,
                 patch_size: int,
                 norm_target: bool = True,
                 eps: float = 1e-6) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.norm_target = norm_target
        self.eps = eps

    def _patch_stats(self, target: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-patch mean and unbiased variance, each ``(B, L, 1)``."""
        if target.shape[-1] < 2:
            raise ValueError(
                'LatentReconstructionHead: norm_target needs at least 2 '
                f'values per patch (p*p*d), got {target.shape[-1]}; set '
                'norm_target=False or use a larger patch_size.')
        return (target.mean(dim=-1,
                            keepdim=True), target.var(dim=-1, keepdim=True))

    def construct_target(self, z: Tensor) -> Tensor:
        """Latent ``(B, d, h, w)`` -> target patches ``(B, L, p * p * d)``.

        Returns:
            Tensor: ``(B, L, p * p * d)``, per-patch normalised when
            ``norm_target``.
        """
        target = patchify(z, self.patch_size)
        if self.norm_target:
            mean, var = self._patch_stats(target)
            target = (target - mean) / (var + self.eps)**0.5
        return target

    def loss(self, pred: Tensor, z: Tensor, mask: Tensor) -> Tensor:
        """Masked-token MSE.

        Args:
            pred (Tensor): Predictions ``(B, L, p * p * d)``.
            z (Tensor): True latent ``(B, d, h, w)``.
            mask (Tensor): ``(B, L)``, 1 = removed (the tokens scored).

        Returns:
            Tensor: Scalar: mean over the ``p * p * d`` values per token, then
            ``sum(loss * mask) / sum(mask)``.
        """
        target = self.construct_target(z)
        if pred.shape != target.shape:
            raise ValueError(
                f'LatentReconstructionHead: pred shape {tuple(pred.shape)} '
                f'!= target shape {tuple(target.shape)}; check that '
                f'head.patch_size ({self.patch_size}) and the decoder '
                f'patch_size / in_channels match the latent.')
        per_token = ((pred - target)**2).mean(dim=-1)  # (B, L)
        # clamp: with mask_ratio 0 nothing is scored; the loss is then 0.
        return (per_token * mask).sum() / mask.sum().clamp(min=1)

    def paste_prediction(self, pred: Tensor, z: Tensor,
                         mask: Tensor) -> Tensor:
        """Latent whose masked patches come from ``pred`` and visible ones
        from ``z`` (the MAE visualisation convention).

        With ``norm_target`` the prediction is mapped back to latent units
        with each true patch's mean and variance.

        Args:
            pred (Tensor): Predictions ``(B, L, p * p * d)``.
            z (Tensor): True latent ``(B, d, h, w)``.
            mask (Tensor): ``(B, L)``, 1 = removed.

        Returns:
            Tensor: Pasted latent ``(B, d, h, w)``.
        """
        target = patchify(z, self.patch_size)  # (B, L, ppd), latent units
        if self.norm_target:
            mean, var = self._patch_stats(target)
            pred = pred * (var + self.eps)**0.5 + mean
        m = mask[..., None].to(pred.dtype)  # (B, L, 1)
        pasted = target * (1 - m) + pred * m
        return unpatchify(pasted, self.patch_size, z.shape[2], z.shape[3])
