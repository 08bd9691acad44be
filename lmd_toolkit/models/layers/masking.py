"""Per-sample random token masking (MAE)."""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor


Generators = Union[torch.Generator, Sequence[torch.Generator]]


def seeded_generators(seed: int,
                      indices: Sequence[int],
                      device: Union[str, torch.device] = 'cpu'
                      ) -> List[torch.Generator]:
    """One generator per sample, seeded from ``(seed, index)`` through
    numpy's ``SeedSequence``, so that a sample's mask depends only on the
    seed and its index, not on the batch it is in.

    (Not ``(seed << 32) + index``: torch's CPU generator keeps only the low
    32 bits of a seed, which would make ``seed`` ineffective.)
    """
    generators = []
    for index in indices:
        state = np.random.SeedSequence([seed, int(index)]).generate_state(2)
        generator = torch.Generator(device=device)
        generators.append(
            generator.manual_seed(int(state[0]) << 32 | int(state[1])))
    return generators


def random_masking(x: Tensor,
                   mask_ratio: float,
                   generator: Optional[Generators] = None
                   ) -> Tuple[Tensor, Tensor, Tensor]:
    """Keep a random subset of ``int(L * (1 - mask_ratio))`` tokens per sample.

    Each sample draws uniform noise per token; the tokens with the smallest
    noise are kept (in that random order).

    Mask convention used throughout lmd-toolkit: ``mask == 1`` marks a
    REMOVED (masked, to-be-predicted) token, ``mask == 0`` a visible one.

    Args:
        x (Tensor): Tokens ``(B, L, C)``.
        mask_ratio (float): Fraction of tokens to remove, ``0 <= r < 1``.
        generator (torch.Generator | Sequence[torch.Generator], optional):
            Source of the noise, for reproducible masks: one generator for
            the batch, or one per sample (then a sample's mask does not
            depend on the batch it is in). Must live on ``x.device``.
            Defaults to None.

    Returns:
        tuple: ``x_kept`` ``(B, K, C)`` with ``K = int(L * (1 - r))``;
        ``mask`` ``(B, L)`` in the original token order (1 = removed);
        ``ids_restore`` ``(B, L)`` such that gathering
        ``cat([x_kept, mask_tokens], 1)`` with it restores the original order.
    """
    B, L, C = x.shape
    ids_keep, mask, ids_restore = _draw_mask(B, L, mask_ratio, x.dtype,
                                             x.device, generator)
    x_kept = torch.gather(x, 1, ids_keep[..., None].expand(-1, -1, C))
    return x_kept, mask, ids_restore  # (B, K, C), (B, L), (B, L)


@torch.compiler.disable
def _draw_mask(B: int, L: int, mask_ratio: float, dtype: torch.dtype,
               device: torch.device, generator: Optional[Generators]
               ) -> Tuple[Tensor, Tensor, Tensor]:
    """The random draw of :func:`random_masking`: ``ids_keep (B, K)``,
    ``mask (B, L)`` and ``ids_restore (B, L)``.

    Always eager (a graph break under ``torch.compile``): the float
    ``mask_ratio`` and ``K = int(L * (1 - mask_ratio))`` never enter a
    compiled graph, where turning the float into a size makes dynamo
    specialise on, and recompile for, every ratio of the schedule.
    ``ids_keep`` is marked dynamic in ``K``, so that the graph after it
    (gather, encoder, decoder, loss) serves every token count.
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f'random_masking: mask_ratio must satisfy '
                         f'0 <= mask_ratio < 1, got {mask_ratio!r}.')
    len_keep = int(L * (1 - mask_ratio))
    if isinstance(generator, (list, tuple)):
        if len(generator) != B:
            raise ValueError(f'random_masking: got {len(generator)} '
                             f'generators for a batch of {B} samples.')
        noise = torch.stack([
            torch.rand(L, device=device, generator=g) for g in generator
        ])  # (B, L)
    else:
        noise = torch.rand(B, L, device=device, generator=generator)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: first = kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # inverse permutation
    ids_keep = ids_shuffle[:, :len_keep]  # (B, K)
    mask = torch.ones(B, L, device=device, dtype=dtype)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)  # back to the original order
    torch._dynamo.maybe_mark_dynamic(ids_keep, 1)
    return ids_keep, mask, ids_restore
