"""Hinge GAN losses and the adaptive generator weight of VQGAN / LDM."""
import torch
import torch.nn.functional as F
from torch import Tensor


def hinge_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Discriminator hinge loss
    ``mean(relu(1 - real)) + mean(relu(1 + fake))`` (Lim & Ye 2017).

    taming / LDM multiply this by 0.5; with Adam (scale-invariant updates)
    the factor makes no practical difference.

    Returns:
        Tensor: A scalar.
    """
    return F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean()


def hinge_g_loss(logits_fake: Tensor) -> Tensor:
    """Generator loss of the hinge GAN: ``-mean(fake logits)``.

    Returns:
        Tensor: A scalar.
    """
    return -logits_fake.mean()


def adaptive_gan_weight(rec_loss: Tensor,
                        gan_loss: Tensor,
                        last_layer: Tensor,
                        max_weight: float = 1e4,
                        eps: float = 1e-4) -> Tensor:
    """VQGAN's adaptive weight of the generator GAN loss (taming eq. 7)::

        gamma = ||grad_last rec_loss|| / (||grad_last gan_loss|| + eps)

    clamped to ``[0, max_weight]`` and detached. ``rec_loss`` is the
    non-adversarial reconstruction objective (pixel + perceptual, as in
    taming and LDM: not the KL / codebook terms); ``last_layer`` is the
    decoder's last weight (``decoder.conv_out.weight``). Both graphs are
    kept for the following ``backward()``.

    Returns:
        Tensor: A detached scalar.
    """
    rec_grad, = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)
    gan_grad, = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)
    gamma = rec_grad.norm() / (gan_grad.norm() + eps)
    return gamma.clamp(0.0, max_weight).detach()
