"""Progressive unmasking from images, a user mask or nothing (the rule and
the reveal loop: :mod:`lmd_toolkit.models.progressive_unmasking`), and
inpainting of a user-drawn region on top of it."""
import warnings
from typing import Dict, Optional, Union

import numpy as np
import torch
from torch import Tensor

from lmd_toolkit.engine.mask_schedulers import (BaseMaskRatio,
                                                build_mask_scheduler)
from lmd_toolkit.models.layers import num_kept_tokens
from lmd_toolkit.models.progressive_unmasking import masked_counts, unmask
from .inference import (ImageInput, ImagesInput, _region_at_input_size,
                        _to_hwc_uint8, check_token_mask, input_size,
                        load_images, patch_mask_to_pixels,
                        region_to_token_mask, to_model_range)

__all__ = ['build_mask_scheduler', 'masked_counts', 'sample', 'inpaint']


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
        start = L - num_kept_tokens(L, start_ratio)
    else:
        start = None
    counts = masked_counts(sched, steps, L, start)
    if counts[0] > L - num_kept_tokens(L, sched.max_ratio):
        warnings.warn(
            f'sample: starting with {counts[0]}/{L} tokens removed, above the '
            f'scheduler max_ratio={sched.max_ratio} that the model trained '
            f'on; the first predictions regress to latent means (blurry).')

    out = unmask(model,
                 None if uint8 is None else to_model_range(uint8, 'cpu'),
                 B,
                 start_mask if mask is not None else None,
                 counts,
                 seed=seed,
                 batch_size=batch_size,
                 autocast_dtype=autocast_dtype,
                 decode_intermediates=decode_intermediates,
                 first_index=first_index)
    return dict(images=out['images'],
                pred_latent=out['pred_latent'],
                inputs=uint8,
                start_mask=out['start_mask'],
                counts=counts,
                steps=out['steps'])


@torch.no_grad()
def inpaint(
        model: torch.nn.Module,
        image: ImageInput,
        region_mask: Union[np.ndarray, Tensor, str],
        min_coverage: float = 0.0,
        steps: int = 1,
        scheduler: Union[None, str, dict, object] = None,
        seed: int = 0,
        autocast_dtype: Union[None, str,
                              torch.dtype] = None) -> Dict[str, Tensor]:
    """Fill a user-drawn region of one image; keep everything else.

    The region (pixels, 1 / white = fill) is mapped to latent patches by
    :func:`region_to_token_mask`; those patches are predicted from all the
    others (``steps=1``) or revealed progressively by the sampler
    (``steps > 1``, see :func:`lmd_toolkit.apis.sample`). The output is the
    input image outside the removed patches' pixel squares (bit-identical,
    whatever the projector) and the decoded prediction inside them.

    Args:
        model (nn.Module): From :func:`init_model`.
        image: One image (path, PIL, uint8 array or tensor ``(3, H, W)``).
        region_mask (np.ndarray | Tensor | str): ``(H, W)`` bool / uint8 at
            the image's own size (resized and cropped like the image) or at
            the model input size; or a PNG path (white = fill).
        min_coverage (float): A patch is filled when more than this fraction
            of its pixels lies in the region. Defaults to 0.0 (any overlap).
        steps (int): Sampler steps. Defaults to 1 (one prediction).
        scheduler (str | dict | BaseMaskRatio, optional): Mask scheduler of
            the sampler. Defaults to None (the model's training scheduler).
        seed (int): Seed of the reveal order. Defaults to 0.
        autocast_dtype (str | torch.dtype, optional): As in
            :func:`reconstruct`. Defaults to None.

    Returns:
        dict: ``input``, ``masked`` and ``inpainted`` uint8 ``(3, H, W)``;
        ``mask`` ``(L,)`` (1 = filled); ``pixel_mask`` bool ``(H, W)``;
        ``pred_latent`` ``(d, h, w)``; ``steps`` (the sampler's per-step
        list).
    """
    size = input_size(model)
    raw = _to_hwc_uint8(
        image
        if not isinstance(image, Tensor) or image.ndim == 3 else image[0], 0)
    region = _region_at_input_size(region_mask, raw.shape[:2], size)
    token_mask = region_to_token_mask(region, model, min_coverage)
    if token_mask.sum() == 0:
        raise ValueError('inpaint: the region mask selects no latent patch; '
                         'draw the region in white (nonzero).')
    out = sample(model,
                 images=[raw],
                 mask=token_mask,
                 steps=steps,
                 scheduler=scheduler,
                 seed=seed,
                 autocast_dtype=autocast_dtype,
                 decode_intermediates=False)
    uint8 = out['inputs'][0]
    pixel_mask = patch_mask_to_pixels(token_mask[None], model)[0, 0] > 0
    inpainted = torch.where(pixel_mask, out['images'][0], uint8)
    return dict(input=uint8,
                masked=torch.where(pixel_mask, torch.full_like(uint8, 128),
                                   uint8),
                inpainted=inpainted,
                mask=token_mask,
                pixel_mask=pixel_mask,
                pred_latent=out['pred_latent'][0],
                steps=out['steps'])
