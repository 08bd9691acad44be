"""KL divergence of a diagonal Gaussian posterior from N(0, I)."""
import torch
from torch import Tensor


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
