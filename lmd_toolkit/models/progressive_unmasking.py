"""Progressive unmasking: the training mask schedule read backwards (the
core of ``lmd_toolkit.apis.sample`` and of ``SampleGridHook``).

Training raises the mask ratio over time (e.g. cosine 0.15 -> 0.75). The
sampler goes the other way: it starts from a high ratio (or a user mask, or
all tokens removed), predicts every removed latent patch, reveals some of
them (the predictions become visible tokens, fed back exactly like real
ones), and repeats until nothing is removed.

Rule, for ``K`` steps and a scheduler ``r(t, T)``: the schedule ratios are
``rho_k = r(K - 1 - k, K)`` for ``k = 0 .. K-1`` (the training curve from its
end to its start). The number of removed tokens the model sees at step ``k``
is

- ``n_0``: the start (``L - int(L * (1 - start_ratio))``, the user mask's
  count, or ``L`` for a fully masked start); by default ``rho_0``'s count;
- ``n_k = min(n_{k-1}, L - int(L * (1 - rho_k)))`` for ``k >= 1`` (the
  count ``random_masking`` keeps removed at ratio ``rho_k``, never more than
  before);
- after the last step ``0``: step ``k`` reveals ``n_k - n_{k+1}`` tokens.

Which removed tokens are revealed is drawn once per sample (uniform random
order, seeded by ``(seed, index in the list)``);
an LMD regressor has no confidence score to rank them.
"""
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor

from .layers import num_kept_tokens, patchify, seeded_generators, unpatchify

AUTOCAST_DTYPES = {
    None: None,
    'bf16': torch.bfloat16,
    'bfloat16': torch.bfloat16,
    'fp16': torch.float16,
    'float16': torch.float16,
}


def autocast_context(device: torch.device, dtype: Union[None, str,
                                                        torch.dtype]):
    """``torch.autocast`` for ``dtype`` ('bf16', 'fp16' or a torch dtype),
    or a no-op context for None. The projector disables autocast itself."""
    if isinstance(dtype, str) or dtype is None:
        if dtype not in AUTOCAST_DTYPES:
            raise ValueError(f'autocast_dtype must be one of '
                             f'{list(AUTOCAST_DTYPES)}, got {dtype!r}.')
        dtype = AUTOCAST_DTYPES[dtype]
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_uint8(images: Tensor) -> Tensor:
    """Images about [-1, 1] -> uint8 [0, 255] (rounded, clamped), CPU."""
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).byte().cpu()


def sample_generators(seed: int, start: int, count: int,
                      device: torch.device) -> List[torch.Generator]:
    """Generators of samples ``start .. start + count - 1`` (see
    :func:`~lmd_toolkit.models.layers.seeded_generators`): results do not
    depend on batching."""
    return seeded_generators(seed, range(start, start + count), device)


def masked_counts(scheduler: object,
                  steps: int,
                  num_tokens: int,
                  start: Optional[int] = None) -> List[int]:
    """Removed-token counts of the sampler (module docstring rule).

    Args:
        scheduler (BaseMaskRatio): The schedule, read backwards.
        steps (int): ``K >= 1``.
        num_tokens (int): ``L``.
        start (int, optional): ``n_0``; default the count of ``rho_0``.

    Returns:
        list[int]: ``K + 1`` counts: removed tokens before steps
        ``0 .. K-1``, then 0.
    """
    if int(steps) != steps or steps < 1:
        raise ValueError(f'steps must be a positive integer, got {steps!r}.')
    L = num_tokens

    def count(ratio: float) -> int:
        return L - num_kept_tokens(L, ratio)

    rho = [scheduler.ratio(steps - 1 - k, steps) for k in range(steps)]
    counts = [count(rho[0]) if start is None else int(start)]
    if not 0 <= counts[0] <= L:
        raise ValueError(f'start count must be in [0, {L}], got {counts[0]}.')
    for k in range(1, steps):
        counts.append(min(counts[-1], count(rho[k])))
    return counts + [0]


def unmask(model: torch.nn.Module,
           images: Optional[Tensor],
           num_samples: int,
           start_mask: Optional[Tensor],
           counts: Sequence[int],
           seed: int = 0,
           batch_size: int = 16,
           autocast_dtype: Union[None, str, torch.dtype] = None,
           decode_intermediates: bool = True,
           first_index: int = 0) -> Dict[str, object]:
    """The reveal loop over batches (module docstring rule).

    Args:
        model (nn.Module): A ``LatentMaskingDiffusion``.
        images (Tensor, optional): float32 ``(B, 3, H, W)`` in [-1, 1], or
            None to start from nothing (a zero latent, fully masked).
        num_samples (int): ``B``.
        start_mask (Tensor, optional): ``(B, L)``, 1 = removed; None draws a
            random one with ``counts[0]`` removed per sample.
        counts (Sequence[int]): From :func:`masked_counts`.
        seed (int): Seed of start masks and reveal order. Defaults to 0.
        batch_size (int): Samples per forward. Defaults to 16.
        autocast_dtype (str | torch.dtype, optional): For the ViT.
            Defaults to None.
        decode_intermediates (bool): Decode every step. Defaults to True.
        first_index (int): Index of the first sample (seeds are per index).
            Defaults to 0.

    Returns:
        dict: ``images`` uint8 ``(B, 3, H, W)``, ``pred_latent``,
        ``start_mask`` ``(B, L)`` and ``steps`` (per step: ``mask``,
        ``pred_latent`` and, when decoded, ``images``).
    """
    device = next(model.parameters()).device
    gh, gw = model.backbone.grid_size
    L = gh * gw
    B = int(num_samples)
    mask, steps = start_mask, len(counts) - 1
    chunks = []
    for begin in range(0, B, batch_size):
        n = min(batch_size, B - begin)
        gens = sample_generators(seed, first_index + begin, n,
                                 torch.device('cpu'))
        if mask is not None:
            m0 = start_mask[begin:begin + n]
        else:  # random start mask with counts[0] removed
            noise = torch.stack([torch.rand(L, generator=g) for g in gens])
            m0 = torch.zeros(n, L)
            m0.scatter_(1, noise.argsort(1)[:, L - counts[0]:], 1.0)
        # reveal order: removed tokens in random order, drawn once
        noise = torch.stack([torch.rand(L, generator=g) for g in gens])
        order = torch.where(m0 > 0, noise, noise + 2.0).argsort(1)
        x = None if images is None else images[begin:begin + n].to(device)
        chunks.append(
            _unmask_chunk(model, x, n, m0.to(device), order.to(device), counts,
                          autocast_dtype, decode_intermediates))
    steps_out = []
    for k in range(steps):
        step = dict(ratio=counts[k] / L,
                    num_masked=counts[k],
                    num_revealed=counts[k] - counts[k + 1])
        for key in chunks[0]['steps'][k]:
            step[key] = torch.cat([c['steps'][k][key] for c in chunks])
        steps_out.append(step)
    return dict(images=torch.cat([c['images'] for c in chunks]),
                pred_latent=torch.cat([c['pred_latent'] for c in chunks]),
                start_mask=torch.cat([c['start_mask'] for c in chunks]),
                counts=counts,
                steps=steps_out)


def _unmask_chunk(model: torch.nn.Module, x: Optional[Tensor], n: int,
                  mask: Tensor, order: Tensor, counts: Sequence[int],
                  autocast_dtype: Union[None, str, torch.dtype],
                  decode: bool) -> Dict[str, object]:
    """Run the reveal loop on one batch (``x`` None: no image)."""
    device = mask.device
    p = model.backbone.patch_size
    h, w = model.backbone.latent_size
    if x is None:
        z = torch.zeros(n, model.backbone.in_channels, h, w, device=device)
    else:
        z = model.projector.encode(x)  # fp32, outside autocast
    start_mask = mask.clone()
    tokens = patchify(z.float(), p)  # (n, L, ppd), the working latent
    rank = order.argsort(1)  # position of each token in the reveal order
    steps = []
    for k in range(len(counts) - 1):
        with autocast_context(device, autocast_dtype):
            pred = model.predict_with_mask(unpatchify(tokens, p, h, w), mask)
        pred = model.denormalize_prediction(pred, unpatchify(tokens, p, h, w),
                                            1 - mask)
        m = mask[..., None]
        estimate = tokens * (1 - m) + pred * m  # (n, L, ppd)
        latent = unpatchify(estimate, p, h, w)
        record = dict(mask=mask.cpu(), pred_latent=latent.cpu())
        if decode:
            record['images'] = to_uint8(model.projector.decode(latent))
        steps.append(record)
        # The start's removed tokens hold ranks 0 .. n_0 - 1 of the reveal
        # order; step k reveals ranks [n_0 - n_k, n_0 - n_{k+1}).
        reveal = (rank >= counts[0] - counts[k]) & (rank < counts[0] -
                                                    counts[k + 1])
        assert bool((mask[reveal] == 1).all())
        tokens = torch.where(reveal[..., None], pred, tokens)
        mask = mask * (~reveal).float()
    final = unpatchify(tokens, p, h, w)
    return dict(images=to_uint8(model.projector.decode(final)),
                pred_latent=final.cpu(),
                start_mask=start_mask.cpu(),
                steps=steps)
