"""Vector quantiser of VQ-VAE / VQGAN (nearest code, straight-through)."""
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class VectorQuantizer(nn.Module):
    """Replace every latent vector by its nearest codebook entry.

    ``z_q = e_k`` with ``k = argmin_j ||z - e_j||^2``; the forward value is
    ``z_q`` and the gradient reaches ``z`` unchanged (straight-through
    estimator, ``z + sg[z_q - z]``; without gradients the exact codes are
    returned). The loss is (paper eq. 4, VQ-VAE)::

        legacy=False: ||sg[z] - z_q||^2 + beta * ||z - sg[z_q]||^2
        legacy=True:  beta * ||sg[z] - z_q||^2 + ||z - sg[z_q]||^2

    i.e. the codebook term (moves the codes) plus ``beta`` times the
    commitment term (moves the encoder). taming-transformers' and diffusers'
    quantisers default to ``legacy=True``, which puts ``beta`` on the
    codebook term by mistake; official VQGAN / LDM weights were trained that
    way. Both terms are means over all elements.

    Args:
        num_embeddings (int): Codebook size ``K`` (LDM ``n_embed``).
        embedding_dim (int): Code width (LDM ``embed_dim``).
        beta (float): Commitment weight. Defaults to 0.25.
        legacy (bool): taming's weighting (see above). Defaults to False.
        chunk_size (int): Rows of the ``(N, K)`` distance matrix computed at
            once, to bound memory for large codebooks. Defaults to 8192.
    """

    def __init__(self,
                 num_embeddings: int,
                 embedding_dim: int,
                 beta: float = 0.25,
                 legacy: bool = False,
                 chunk_size: int = 8192) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.beta = beta
        self.legacy = legacy
        self.chunk_size = chunk_size
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / num_embeddings,
                         1.0 / num_embeddings)

    @torch.no_grad()
    def nearest_indices(self, flat: Tensor) -> Tensor:
        """Indices ``(N,)`` of the nearest codes of vectors ``(N, D)``."""
        codes = self.embedding.weight
        code_sq = codes.pow(2).sum(1)
        out = []
        for rows in flat.split(self.chunk_size):
            # ||z||^2 is constant per row: argmin of ||e||^2 - 2 z.e suffices
            dist = code_sq[None] - 2.0 * rows @ codes.t()
            out.append(dist.argmin(1))
        return torch.cat(out)

    def forward(self, z: Tensor) -> Tuple[Tensor, Tensor, Dict[str, Tensor]]:
        """Quantise ``z`` of shape ``(B, D, h, w)``.

        Returns:
            tuple: ``z_q (B, D, h, w)`` (straight-through), the scalar loss,
            and a dict with ``indices (B, h, w)``, ``perplexity`` (exp of the
            entropy of code usage in this batch), ``usage`` (fraction of the
            codebook used in this batch), ``codebook_loss`` and
            ``commitment_loss`` (unweighted).
        """
        b, d, h, w = z.shape
        if d != self.embedding_dim:
            raise ValueError(f'VectorQuantizer: expected {self.embedding_dim}'
                             f' channels, got z of shape {tuple(z.shape)}.')
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)  # (B*h*w, D)
        indices = self.nearest_indices(flat.detach().to(
            self.embedding.weight.dtype))
        z_q = self.embedding(indices).view(b, h, w, d).permute(0, 3, 1, 2)
        z_q = z_q.to(z.dtype)
        codebook_loss = F.mse_loss(z_q, z.detach())
        commitment_loss = F.mse_loss(z, z_q.detach())
        if self.legacy:
            loss = self.beta * codebook_loss + commitment_loss
        else:
            loss = codebook_loss + self.beta * commitment_loss
        if z.requires_grad:  # straight-through estimator
            z_q = z + (z_q - z).detach()

        counts = torch.bincount(indices, minlength=self.num_embeddings)
        probs = counts.float() / indices.numel()
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        info = dict(
            indices=indices.view(b, h, w),
            perplexity=perplexity,
            usage=(counts > 0).float().mean(),
            codebook_loss=codebook_loss.detach(),
            commitment_loss=commitment_loss.detach())
        return z_q, loss, info

    def lookup(self, indices: Tensor) -> Tensor:
        """Codes for ``indices (B, h, w)`` -> ``(B, D, h, w)``."""
        return self.embedding(indices).permute(0, 3, 1, 2).contiguous()

    def extra_repr(self) -> str:
        return (f'num_embeddings={self.num_embeddings}, embedding_dim='
                f'{self.embedding_dim}, beta={self.beta}, '
                f'legacy={self.legacy}')
