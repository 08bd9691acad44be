"""Inference with a trained LMD: load a model, reconstruct (inpainting and
sampling: ``sampler.py``).

Images enter as file paths, PIL images, uint8 ``(H, W, 3)`` / ``(H, W)``
numpy arrays or a uint8 tensor ``(B, 3, H, W)`` / ``(3, H, W)``; they leave
as uint8 ``(B, 3, H, W)`` tensors (or float32 in [0, 255]). Every image is
brought to the model's input size ``(H, W) = backbone.latent_size *
projector.downsample_factor`` by :func:`resize_and_center_crop`: scaled
(bicubic, antialiased) so that it covers ``(H, W)`` with its aspect ratio
kept, then centre-cropped. An image that already has the size is not
resampled at all.
"""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from PIL import Image
from torch import Tensor

from lmd_toolkit.datasets.image_io import read_rgb_image
from lmd_toolkit.models.progressive_unmasking import (  # noqa: F401
    AUTOCAST_DTYPES, autocast_context, sample_generators, to_uint8)
from lmd_toolkit.models.projectors.base import BaseProjector
from lmd_toolkit.registry import MODELS
from lmd_toolkit.utils import register_all_modules
from lmd_toolkit.utils.compat import apply_compat_shims
from lmd_toolkit.utils.fileio import UnreadableFileError, safe_torch_load
from lmd_toolkit.utils.state_dict import check_state_dict, strip_prefixes

ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray, Tensor]
ImagesInput = Union[ImageInput, Sequence[ImageInput]]


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: Union[str, torch.device] = 'cpu',
               cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build an LMD model from a config, load a checkpoint, set eval mode.

    Args:
        config (str | Config): Config file path or a loaded config.
        checkpoint (str, optional): A training checkpoint of this toolkit
            (``iter_*.pth``; only ``state_dict`` is read). Without it the
            model keeps its initial weights (``init_weights()`` is run), for
            timing. Read with the safe loader and checked key by key
            (:func:`load_checkpoint_strict`). Defaults to None.
        device (str | torch.device): Where the model runs. Defaults to 'cpu'.
        cfg_options (dict, optional): Overrides merged into the config, e.g.
            ``{'model.projector.checkpoint': None}``. Defaults to None.

    Returns:
        nn.Module: The ``LatentMaskingDiffusion`` in eval mode, with the
        config attached as ``model.cfg``.

    Raises:
        UnreadableFileError: The checkpoint is empty, truncated or not a
            torch file.
        StateDictMismatchError: Its weights do not fit the model built from
            ``config`` (missing, unexpected or mis-shaped keys listed).
    """

    if isinstance(config, (str, os.PathLike)):
        if not osp.isfile(config):
            raise FileNotFoundError(f'init_model: config file not found: '
                                    f'{config}')
        config = Config.fromfile(config)
    elif not isinstance(config, Config):
        raise TypeError(f'init_model: config must be a path or an mmengine '
                        f'Config, got {type(config).__name__}.')
    if cfg_options:
        config.merge_from_dict(cfg_options)
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('lmd_toolkit'):
        model = MODELS.build(config.model)
    if checkpoint is None:
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # mmengine logs every parameter
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
    else:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'init_model: checkpoint not found: {checkpoint}')
        load_checkpoint_strict(model, checkpoint)
    model.cfg = config
    return model.to(device).eval()


#: Role and fix of the file in the errors of :func:`load_checkpoint_strict`.
EVAL_CHECKPOINT_ROLE = 'Evaluation checkpoint'
EVAL_CHECKPOINT_FIX = ('Evaluate with the config the checkpoint was trained '
                       'with (saved in its work_dir), or pass a checkpoint '
                       'of this config; a truncated file cannot be repaired: '
                       'use an earlier checkpoint or train again.')


def checkpoint_state_dict(obj, path: str,
                          role: str = EVAL_CHECKPOINT_ROLE,
                          fix: str = EVAL_CHECKPOINT_FIX) -> Dict[str, Tensor]:
    """The weights of a loaded checkpoint: its ``state_dict`` entry (mmengine
    training checkpoints) or the object itself (a bare state dict).

    Raises:
        UnreadableFileError: ``obj`` holds no dict of tensors.
    """
    state_dict = obj.get('state_dict', obj) if isinstance(obj, dict) else obj
    if not isinstance(state_dict, dict) or not any(
            isinstance(v, Tensor) for v in state_dict.values()):
        raise UnreadableFileError(
            path, role, 'holds no state dict (neither a "state_dict" entry '
            f'nor tensors at the top level; got {type(obj).__name__})', fix)
    return state_dict


def _own_projector_prefixes(model: torch.nn.Module,
                            state_dict: Dict[str, Tensor]) -> List[str]:
    """Prefixes of projectors that load their own ``checkpoint`` file and of
    which ``state_dict`` holds no key at all (the one legitimately partial
    case: weights saved without the frozen projector)."""
    prefixes = []
    for name, module in model.named_modules():
        if not name or not isinstance(module, BaseProjector) or getattr(
                module, 'checkpoint', None) is None:
            continue
        prefix = name + '.'
        if not any(k.startswith(prefix) for k in state_dict) and any(
                True for _ in module.state_dict()):
            prefixes.append(prefix)
    return prefixes


def check_checkpoint(model: torch.nn.Module,
                     loaded: dict,
                     checkpoint: str,
                     role: str = EVAL_CHECKPOINT_ROLE,
                     fix: str = EVAL_CHECKPOINT_FIX) -> List[str]:
    """Raise unless a loaded checkpoint fits ``model`` exactly; load
    nothing.

    Args:
        model (nn.Module): The model (a DDP wrapper is unwrapped).
        loaded (dict): The checkpoint object (from the safe loader).
        checkpoint (str): Its file (named in the errors).
        role (str): What the file is for; starts the error messages.
            Defaults to 'Evaluation checkpoint'.
        fix (str): What to do; ends the error messages.

    Returns:
        list[str]: Prefixes of frozen projectors absent from the file that
        load their own ``checkpoint`` instead (usually empty).

    Raises:
        UnreadableFileError: ``loaded`` holds no state dict.
        StateDictMismatchError: Missing, unexpected or mis-shaped keys.
    """
    state_dict = strip_prefixes(checkpoint_state_dict(loaded, checkpoint,
                                                      role, fix))
    module = getattr(model, 'module', model)
    own = _own_projector_prefixes(module, state_dict)
    check_state_dict(module, state_dict, checkpoint, role, fix,
                     allow_missing=own)
    return own


def load_checkpoint_strict(model: torch.nn.Module,
                           checkpoint: str,
                           role: str = EVAL_CHECKPOINT_ROLE,
                           fix: str = EVAL_CHECKPOINT_FIX,
                           loaded: Optional[dict] = None) -> dict:
    """Load a checkpoint into ``model`` only if it fits it exactly.

    The file is read once with ``torch.load(weights_only=True)``
    (``lmd_toolkit.utils.fileio.safe_torch_load``), its weights are checked
    against the model (``lmd_toolkit.utils.state_dict.check_state_dict``)
    and only then copied in. A frozen projector with its own
    ``checkpoint`` may be absent from the file altogether; it is then loaded
    from that file (``projector.init_weights()``).

    Args:
        model (nn.Module): The model (a DDP wrapper is unwrapped).
        checkpoint (str): The file (named in the errors).
        role (str): What the file is for; starts the error messages.
            Defaults to 'Evaluation checkpoint'.
        fix (str): What to do; ends the error messages.
        loaded (dict, optional): The file's content when the caller has read
            it already with the safe loader. Defaults to None (read here).

    Returns:
        dict: The loaded checkpoint object.

    Raises:
        UnreadableFileError: Missing, empty, truncated or no state dict.
        StateDictMismatchError: Missing, unexpected or mis-shaped keys.
    """
    if loaded is None:
        apply_compat_shims()  # mmengine checkpoints: data-only globals
        loaded = safe_torch_load(checkpoint, role, fix)
    own = check_checkpoint(model, loaded, checkpoint, role, fix)
    state_dict = strip_prefixes(checkpoint_state_dict(loaded, checkpoint,
                                                      role, fix))
    module = getattr(model, 'module', model)
    module.load_state_dict(state_dict, strict=not own)
    for prefix in own:
        module.get_submodule(prefix[:-1]).init_weights()
    return loaded


def input_size(model: torch.nn.Module) -> Tuple[int, int]:
    """The image size ``(H, W)`` the model takes: ``backbone.latent_size``
    times ``projector.downsample_factor``."""
    f = model.projector.downsample_factor
    h, w = model.backbone.latent_size
    return h * f, w * f


def resize_and_center_crop(img: np.ndarray,
                           size: Tuple[int, int],
                           resample: int = Image.BICUBIC) -> np.ndarray:
    """Scale ``img`` to cover ``size`` (aspect ratio kept), centre-crop it.

    Args:
        img (np.ndarray): ``(h, w, C)`` or ``(h, w)`` uint8 (bool for masks).
        size (tuple): Target ``(H, W)``.
        resample (int): PIL filter; ``Image.NEAREST`` for masks.

    Returns:
        np.ndarray: ``(H, W, C)`` / ``(H, W)`` of ``img``'s dtype; ``img``
        itself when it already has the size.
    """
    H, W = size
    h, w = img.shape[:2]
    if (h, w) == (H, W):
        return img
    scale = max(H / h, W / w)
    # ceil-safe rounding: the scaled image must cover (H, W)
    new_h, new_w = max(H, round(h * scale)), max(W, round(w * scale))
    is_bool = img.dtype == bool
    pil = Image.fromarray(img.astype(np.uint8) * 255 if is_bool else img)
    pil = pil.resize((new_w, new_h), resample)
    top, left = (new_h - H) // 2, (new_w - W) // 2
    out = np.asarray(pil)[top:top + H, left:left + W]
    return out > 127 if is_bool else out


def _to_hwc_uint8(item: ImageInput, index: int) -> np.ndarray:
    """One image of any accepted type -> ``(h, w, 3)`` uint8 RGB."""
    if isinstance(item, (str, os.PathLike)):
        if not osp.isfile(item):
            raise FileNotFoundError(f'image {index}: file not found: {item}')
        return read_rgb_image(str(item))
    if isinstance(item, Image.Image):
        return np.asarray(item.convert('RGB'))
    if isinstance(item, Tensor):
        if item.ndim != 3 or item.shape[0] != 3:
            raise ValueError(f'image {index}: a tensor image must be (3, H, '
                             f'W), got {tuple(item.shape)}.')
        item = item.permute(1, 2, 0).cpu().numpy()
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise TypeError(
                f'image {index}: expected uint8 pixels in [0, 255], got '
                f'dtype {item.dtype}; convert with (x * 255).round()'
                f'.astype(np.uint8) if your array is in [0, 1].')
        if item.ndim == 2:
            item = np.repeat(item[..., None], 3, axis=2)
        if item.ndim != 3 or item.shape[2] != 3:
            raise ValueError(f'image {index}: expected an (H, W, 3) or (H, W)'
                             f' array, got shape {item.shape}.')
        return item
    raise TypeError(f'image {index}: unsupported type {type(item).__name__};'
                    f' pass a path, a PIL image, a uint8 numpy array or a '
                    f'uint8 tensor.')


def load_images(images: ImagesInput, size: Tuple[int, int]) -> Tensor:
    """Read and resize images to one uint8 batch.

    Args:
        images: A path, PIL image, uint8 array ``(H, W, 3)`` / ``(H, W)``,
            uint8 tensor ``(3, H, W)`` / ``(B, 3, H, W)``, or a list of them.
        size (tuple): Model input size ``(H, W)``.

    Returns:
        Tensor: uint8 ``(B, 3, H, W)``.
    """
    if isinstance(images, Tensor) and images.ndim == 4:
        if images.dtype != torch.uint8:
            raise TypeError(f'a tensor batch must be uint8 in [0, 255], got '
                            f'{images.dtype}.')
        if tuple(images.shape[2:]) == tuple(size) and images.shape[1] == 3:
            return images.cpu()
        images = list(images)
    elif isinstance(images, Tensor) and images.dtype != torch.uint8:
        raise TypeError(f'a tensor image must be uint8 in [0, 255], got '
                        f'{images.dtype}.')
    if not isinstance(images, (list, tuple)):
        images = [images]
    if len(images) == 0:
        raise ValueError('no images given.')
    arrays = [
        resize_and_center_crop(_to_hwc_uint8(item, i), size)
        for i, item in enumerate(images)
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def to_model_range(images: Tensor, device: torch.device) -> Tensor:
    """uint8 ``(B, 3, H, W)`` -> float32 in [-1, 1] on ``device`` (as
    ``LMDDataPreprocessor``)."""
    return images.to(device).float() / 127.5 - 1.0


def patch_mask_to_pixels(mask: Tensor, model: torch.nn.Module) -> Tensor:
    """Token mask ``(B, L)`` -> pixel mask ``(B, 1, H, W)`` (1 = removed):
    each latent patch covers ``patch_size * downsample_factor`` pixels."""
    gh, gw = model.backbone.grid_size
    cell = model.backbone.patch_size * model.projector.downsample_factor
    m = mask.reshape(mask.shape[0], 1, gh, gw)
    return m.repeat_interleave(cell, 2).repeat_interleave(cell, 3)


def check_token_mask(mask: Union[Tensor, np.ndarray], batch: int,
                     model: torch.nn.Module) -> Tensor:
    """Accept a token mask ``(L,)``, ``(gh, gw)``, ``(B, L)`` or
    ``(B, gh, gw)`` (1 = removed) and return float ``(B, L)``."""
    mask = torch.as_tensor(mask)
    gh, gw = model.backbone.grid_size
    L = gh * gw
    shapes = {(L, ): 1, (gh, gw): 1, (batch, L): 0, (batch, gh, gw): 0}
    if tuple(mask.shape) not in shapes:
        raise ValueError(
            f'mask: expected a token mask of shape (L,) = ({L},), (gh, gw) = '
            f'({gh}, {gw}), (B, L) = ({batch}, {L}) or (B, gh, gw) = '
            f'({batch}, {gh}, {gw}) with 1 = removed, got '
            f'{tuple(mask.shape)}. For a pixel mask use inpaint().')
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError('mask: values must be 0 (visible) or 1 (removed).')
    return mask.reshape(-1, L).expand(batch, L).float()


@torch.no_grad()
def reconstruct(model: torch.nn.Module,
                images: ImagesInput,
                mask_ratio: Optional[float] = None,
                mask: Optional[Union[Tensor, np.ndarray]] = None,
                seed: int = 0,
                batch_size: int = 16,
                autocast_dtype: Union[None, str, torch.dtype] = None,
                output: str = 'uint8',
                progress: bool = False,
                first_index: int = 0) -> Dict[str, Tensor]:
    """Mask images' latents, predict the removed patches, decode.

    Args:
        model (nn.Module): From :func:`init_model`.
        images: Paths, PIL images, uint8 arrays / tensors (module
            docstring); resized and centre-cropped to the model input size.
        mask_ratio (float, optional): Fraction of latent tokens removed at
            random, in [0, 1); per-sample masks seeded by ``(seed, index in
            images)``. Defaults to the model's
            ``eval_mask_ratio`` when ``mask`` is None too.
        mask (Tensor | np.ndarray, optional): Token mask instead of a ratio:
            ``(L,)``, ``(gh, gw)`` (every image) or ``(B, L)``,
            ``(B, gh, gw)``; 1 = removed. Defaults to None.
        seed (int): Seed of the random masks. Defaults to 0.
        batch_size (int): Images per forward. Defaults to 16.
        autocast_dtype (str | torch.dtype, optional): 'bf16' / 'fp16' runs
            the ViT encoder and decoder under autocast; the projector stays
            fp32. Defaults to None (fp32).
        output (str): 'uint8', or 'float' for float32 images in about
            [0, 255], neither rounded nor clamped. Defaults to 'uint8'.
        progress (bool): Show a progress bar. Defaults to False.
        first_index (int): Index of ``images[0]`` in the caller's whole
            list, so that masks of a list processed in pieces are those of
            the whole list. Defaults to 0.

    Returns:
        dict: ``inputs``, ``masked`` (removed patches grey) and ``recon``
        ``(B, 3, H, W)`` (uint8 or float); ``mask`` ``(B, L)`` (1 =
        removed); ``latent`` and ``pred_latent`` ``(B, d, h, w)`` float32.
        All on CPU.
    """
    if mask is not None and mask_ratio is not None:
        raise ValueError('reconstruct: give mask_ratio or mask, not both.')
    if mask is None:
        mask_ratio = (model.eval_mask_ratio
                      if mask_ratio is None else float(mask_ratio))
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f'reconstruct: mask_ratio must be in [0, 1), got'
                             f' {mask_ratio}; use sample() for a fully '
                             f'masked start.')
    if output not in ('uint8', 'float'):
        raise ValueError(f"output must be 'uint8' or 'float', got "
                         f'{output!r}.')
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
    device = next(model.parameters()).device
    uint8 = load_images(images, input_size(model))
    B = uint8.shape[0]
    token_mask = None if mask is None else check_token_mask(mask, B, model)
    results: Dict[str, List[Tensor]] = {
        k: []
        for k in ('masked', 'recon', 'mask', 'latent', 'pred_latent')
    }
    bar = _progress_bar(B, progress)
    for start in range(0, B, batch_size):
        x = to_model_range(uint8[start:start + batch_size], device)
        n = x.shape[0]
        with autocast_context(device, autocast_dtype):
            if token_mask is None:
                gens = sample_generators(seed, first_index + start, n, device)
                out = model.reconstruct(x, mask_ratio, gens)
            else:
                out = model.reconstruct(
                    x, None, mask=token_mask[start:start + n].to(device))
        img = out['pred_img'].float()
        pixel_mask = patch_mask_to_pixels(out['mask'], model)
        results['masked'].append(to_uint8(x * (1 - pixel_mask)))
        results['recon'].append(
            to_uint8(img) if output == 'uint8' else ((img + 1) * 127.5).cpu())
        results['mask'].append(out['mask'].float().cpu())
        results['latent'].append(out['latent'].float().cpu())
        results['pred_latent'].append(out['pred_latent'].float().cpu())
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    out = {k: torch.cat(v) for k, v in results.items()}
    out['inputs'] = uint8 if output == 'uint8' else uint8.float()
    if output == 'float':
        out['masked'] = out['masked'].float()
    return out


def region_to_token_mask(region: Union[np.ndarray, Tensor],
                         model: torch.nn.Module,
                         min_coverage: float = 0.0) -> Tensor:
    """Pixel region at model input size -> token mask ``(L,)``.

    A latent patch covers a square of ``patch_size * downsample_factor``
    pixels; it is removed (to be filled) when the fraction of its pixels
    inside the region is greater than ``min_coverage``. The default 0
    removes every patch the region touches, so the whole region is always
    regenerated.

    Args:
        region (np.ndarray | Tensor): bool / uint8 ``(H, W)``, nonzero = fill.
        model (nn.Module): A ``LatentMaskingDiffusion``.
        min_coverage (float): In [0, 1). Defaults to 0.0.

    Returns:
        Tensor: float ``(L,)``, 1 = removed.
    """
    if not 0.0 <= min_coverage < 1.0:
        raise ValueError(f'min_coverage must be in [0, 1), got '
                         f'{min_coverage}.')
    region = torch.as_tensor(np.asarray(region) != 0).float()
    gh, gw = model.backbone.grid_size
    cell = model.backbone.patch_size * model.projector.downsample_factor
    cover = region.reshape(gh, cell, gw, cell).mean(dim=(1, 3))  # (gh, gw)
    return (cover > min_coverage).float().flatten()


def _region_at_input_size(region: Union[np.ndarray, Tensor,
                                        str], original_hw: Tuple[int, int],
                          size: Tuple[int, int]) -> np.ndarray:
    """Read a region mask (path: white = fill) and map it to the model input
    size with the image's own resize and crop (nearest)."""
    if isinstance(region, (str, os.PathLike)):
        region = np.asarray(Image.open(region).convert('L')) > 127
    region = np.asarray(region.cpu() if isinstance(region, Tensor) else region)
    if region.ndim == 3 and region.shape[2] in (1, 3, 4):
        region = region[..., 0]
    if region.ndim != 2 or tuple(
            region.shape) not in (tuple(original_hw), tuple(size)):
        raise ValueError(
            f'inpaint: region_mask must be (H, W) at the image size '
            f'{tuple(original_hw)} or at the model input size {tuple(size)}, '
            f'got shape {tuple(region.shape)}.')
    region = region != 0
    if tuple(region.shape) == tuple(original_hw):
        region = resize_and_center_crop(region, size, Image.NEAREST)
    return region


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit='img')
