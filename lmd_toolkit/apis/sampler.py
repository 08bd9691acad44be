"""Progressive unmasking: the training mask schedule read backwards.

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
import warnings
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from lmd_toolkit.engine.mask_schedulers import BaseMaskRatio
from lmd_toolkit.models.layers import patchify, unpatchify
from lmd_toolkit.registry import MASK_SCHEDULERS
from .inference import (ImagesInput, autocast_context, check_token_mask,
                        denormalize_prediction, forward_with_mask, input_size,
                        load_images, sample_generators, to_model_range,
                        to_uint8)


def build_mask_scheduler(
        scheduler: Union[None, str, dict, BaseMaskRatio],
        model: Optional[torch.nn.Module] = None) -> BaseMaskRatio:
    """A mask scheduler from ``MASK_SCHEDULERS``.

    Args:
        scheduler (str | dict | BaseMaskRatio, optional): A registered name
            (built with its defaults), a config dict or an instance. None:
            the scheduler of the model's training config
            (``default_hooks.mask_ratio.scheduler``) when ``model.cfg`` has
            one, else ``CosineMaskRatio()``.
        model (nn.Module, optional): Model from ``init_model``.

    Returns:
        BaseMaskRatio: The scheduler.
    """
    import lmd_toolkit.engine.mask_schedulers  # noqa: F401 (registers)
    if isinstance(scheduler, BaseMaskRatio):
        return scheduler
    if scheduler is None:
        cfg = getattr(model, 'cfg', None)
        hook = (cfg.get('default_hooks', {}) or {}).get('mask_ratio') \
            if cfg is not None else None
        scheduler = dict(
            hook['scheduler']) if hook and hook.get('scheduler') else dict(
                type='CosineMaskRatio')
    if isinstance(scheduler, str):
        scheduler = dict(type=scheduler)
    if not isinstance(scheduler, dict) or 'type' not in scheduler:
        raise TypeError(f'scheduler must be a registered name, a dict with '
                        f'"type" or a BaseMaskRatio, got {scheduler!r}.')
    name = scheduler['type']
    if isinstance(name, str) and name not in MASK_SCHEDULERS.module_dict:
        raise ValueError(f'unknown mask scheduler {name!r}; registered: '
                         f'{sorted(MASK_SCHEDULERS.module_dict)}.')
    return MASK_SCHEDULERS.build(scheduler)


def masked_counts(scheduler: BaseMaskRatio,
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
        return L - int(L * (1 - ratio))

    rho = [scheduler.ratio(steps - 1 - k, steps) for k in range(steps)]
    counts = [count(rho[0]) if start is None else int(start)]
    if not 0 <= counts[0] <= L:
        raise ValueError(f'start count must be in [0, {L}], got {counts[0]}.')
    for k in range(1, steps):
        counts.append(min(counts[-1], count(rho[k])))
    return counts + [0]


@torch.no_grad()
def sample(model: torch.nn.Module,
           images: Optional[ImagesInput] = None,
           num_samples: int = 1,
           mask: Optional[Union[Tensor, np.ndarray]] = None,
           start_ratio: Optional[float] = None,
           steps: int = 8,
           scheduler: Union[None, str, dict, BaseMaskRatio] = None,
           seed: int = 0,
           batch_size: int = 16,
           autocast_dtype: Union[None, str, torch.dtype] = None,
           decode_intermediates: bool = True,
           first_index: int = 0) -> Dict[str, object]:
    """Progressive unmasking sampler (see the module docstring).

    Start: ``mask`` (a token mask, 1 = removed), else ``start_ratio``
    (random tokens removed; 1.0 removes all), else the schedule's first
    ratio ``rho_0``; with ``images=None`` the start is fully masked. A start
    above the scheduler's ``max_ratio`` is allowed with a warning: the model
    never trained there and regresses to latent means (blur).

    Args:
        model (nn.Module): From :func:`init_model`.
        images: Images as in :func:`reconstruct`, or None to start from
            nothing (fully masked).
        num_samples (int): Samples when ``images`` is None. Defaults to 1.
        mask (Tensor | np.ndarray, optional): Start token mask, ``(L,)``,
            ``(gh, gw)``, ``(B, L)`` or ``(B, gh, gw)``; all samples must
            remove the same number of tokens. Defaults to None.
        start_ratio (float, optional): Start mask ratio in [0, 1].
            Defaults to None.
        steps (int): ``K``, model calls. Defaults to 8.
        scheduler (str | dict | BaseMaskRatio, optional): See
            :func:`build_mask_scheduler`. Defaults to None.
        seed (int): Seed of start masks and reveal order. Defaults to 0.
        batch_size (int): Samples per forward. Defaults to 16.
        autocast_dtype (str | torch.dtype, optional): 'bf16' / 'fp16' for
            the ViT; the projector stays fp32. Defaults to None.
        decode_intermediates (bool): Decode every step's estimate to
            images. Defaults to True.
        first_index (int): Index of the first sample in the caller's whole
            list (seeds are per index). Defaults to 0.

    Returns:
        dict: ``images`` uint8 ``(B, 3, H, W)`` (final); ``pred_latent``
        ``(B, d, h, w)``; ``inputs`` uint8 ``(B, 3, H, W)`` or None;
        ``start_mask`` ``(B, L)``; ``counts`` (list of ``K + 1`` removed
        counts); ``steps``: one dict per step with ``ratio`` (removed
        fraction the model saw), ``num_masked``, ``num_revealed``, ``mask``
        ``(B, L)`` before the step, ``pred_latent`` ``(B, d, h, w)`` (the
        estimate: visible tokens + this step's predictions) and, when
        decoded, ``images`` uint8 ``(B, 3, H, W)``.
    """
    if mask is not None and start_ratio is not None:
        raise ValueError('sample: give mask or start_ratio, not both.')
    device = next(model.parameters()).device
    sched = build_mask_scheduler(scheduler, model)
    gh, gw = model.backbone.grid_size
    L = gh * gw
    uint8 = None
    if images is None:
        if mask is not None or start_ratio not in (None, 1.0):
            raise ValueError('sample: without images the start is fully '
                             'masked; do not pass mask or start_ratio < 1.')
        B, start_ratio = int(num_samples), 1.0
    else:
        uint8 = load_images(images, input_size(model))
        B = uint8.shape[0]
    if mask is not None:
        start_mask = check_token_mask(mask, B, model)
        removed = start_mask.sum(1)
        if not bool((removed == removed[0]).all()):
            raise ValueError(f'sample: every sample must start with the same '
                             f'number of removed tokens, got '
                             f'{removed.int().tolist()}.')
        start = int(removed[0])
    elif start_ratio is not None:
        if not 0.0 <= start_ratio <= 1.0:
            raise ValueError(f'start_ratio must be in [0, 1], got '
                             f'{start_ratio}.')
        start = L - int(L * (1 - start_ratio))
    else:
        start = None
    counts = masked_counts(sched, steps, L, start)
    if counts[0] > L - int(L * (1 - sched.max_ratio)):
        warnings.warn(
            f'sample: starting with {counts[0]}/{L} tokens removed, above the '
            f'scheduler max_ratio={sched.max_ratio} that the model trained '
            f'on; the first predictions regress to latent means (blurry).')

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
        x = None if uint8 is None else to_model_range(uint8[begin:begin +
                                                            n], device)
        chunks.append(
            _sample_chunk(model, x, n, m0.to(device), order.to(device), counts,
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
                inputs=uint8,
                start_mask=torch.cat([c['start_mask'] for c in chunks]),
                counts=counts,
                steps=steps_out)


def _sample_chunk(model: torch.nn.Module, x: Optional[Tensor], n: int,
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
            pred = forward_with_mask(model, unpatchify(tokens, p, h, w), mask)
        pred = denormalize_prediction(model, pred, unpatchify(tokens, p, h, w),
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
