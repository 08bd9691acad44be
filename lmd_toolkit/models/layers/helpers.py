"""Layer helpers off the training forward path (inference, arguments)."""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor


def to_2tuple(size: Union[int, Sequence[int]], key: str) -> Tuple[int, int]:
    """``28`` -> ``(28, 28)``; ``(h, w)`` -> ``(h, w)``; ``key`` names the
    config key in the error."""
    if isinstance(size, int):
        return size, size
    if isinstance(size, Sequence) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise TypeError(f'{key} must be an int or an (h, w) pair, got {size!r}.')


def unpatchify(x: Tensor, p: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`patchify`: ``(B, L, p*p*d)`` -> ``(B, d, h, w)``."""
    B, L, D = x.shape
    if h % p or w % p:
        raise ValueError(f'unpatchify: latent size (h={h}, w={w}) must be '
                         f'divisible by patch_size={p}.')
    gh, gw = h // p, w // p
    if L != gh * gw or D % (p * p):
        raise ValueError(f'unpatchify: got tokens of shape (L={L}, D={D}); '
                         f'expected L = (h/p)*(w/p) = {gh * gw} and D a '
                         f'multiple of p*p = {p * p}.')
    z = x.reshape(B, gh, gw, p, p, D // (p * p)).permute(0, 5, 1, 3, 2, 4)
    return z.reshape(B, D // (p * p), h, w)  # (B, d, gh, p, gw, p) -> grid


def seeded_generators(seed: int, indices: Sequence[int],
                      device: Union[str, torch.device] = 'cpu'
                      ) -> List[torch.Generator]:
    """One generator per sample from numpy's ``SeedSequence([seed, index])``
    (torch keeps only 32 bits of ``(seed << 32) + index``), so a mask
    depends on the seed and the sample index, not on the batch."""
    gens = []
    for index in indices:
        state = np.random.SeedSequence([seed, int(index)]).generate_state(2)
        gens.append(torch.Generator(device=device).manual_seed(
            int(state[0]) << 32 | int(state[1])))
    return gens


def ids_from_mask(mask: Tensor) -> Tuple[Tensor, Tensor]:
    """A given ``mask (B, L)`` -> ``ids_keep (B, K)`` (visible tokens,
    ascending) and ``ids_restore (B, L)``; every row keeps the same K."""
    keep = (mask == 0).sum(1)
    if not bool((keep == keep[0]).all()):
        raise ValueError(f'ids_from_mask: every sample must keep the same '
                         f'number of tokens, got {keep.tolist()}.')
    ids_shuffle = torch.argsort(mask, dim=1, stable=True)  # visible first
    return ids_shuffle[:, :int(keep[0])], torch.argsort(ids_shuffle, dim=1)


def is_pretrained_cfg(init_cfg: Optional[Union[dict, list]]) -> bool:
    """Whether an mmengine ``init_cfg`` loads a ``Pretrained`` checkpoint."""
    cfgs = init_cfg if isinstance(init_cfg, list) else [init_cfg]
    return any(isinstance(c, dict) and c.get('type') == 'Pretrained'
               for c in cfgs)


def token_grid(num_patches: Union[int, Sequence[int]],
               key: str) -> Tuple[int, int]:
    """``L`` (a square) or ``(gh, gw)`` -> ``(gh, gw)``."""
    if not isinstance(num_patches, int):
        return int(num_patches[0]), int(num_patches[1])
    side = int(round(num_patches**0.5))
    if side * side != num_patches:
        raise ValueError(f'{key}={num_patches} is not a square; pass the grid '
                         f'as num_patches=(gh, gw).')
    return side, side


def check_latent_grid(latent_size: Tuple[int, int], patch_size: int,
                      key: str) -> Tuple[int, int]:
    """The token grid ``(h/p, w/p)``; raises unless ``p`` divides both."""
    h, w = latent_size
    if h % patch_size or w % patch_size:
        raise ValueError(
            f'{key}: latent_size {latent_size} must be divisible by '
            f'patch_size={patch_size} (latent_size = image size / '
            f'projector.downsample_factor).')
    return h // patch_size, w // patch_size


def check_latent(z: Tensor, channels: int, latent_size: Tuple[int, int],
                 key: str) -> None:
    """Raise unless ``z`` is ``(B, channels, *latent_size)``."""
    if z.ndim != 4 or z.shape[1] != channels or tuple(
            z.shape[2:]) != tuple(latent_size):
        raise ValueError(
            f'{key}: expected a latent (B, {channels}, {latent_size[0]}, '
            f'{latent_size[1]}) (in_channels, latent_size), got '
            f'{tuple(z.shape)}. Set backbone.latent_size to image size / '
            f'projector.downsample_factor.')


def init_transformer_weights(module: nn.Module) -> None:
    """Xavier-uniform Linear / Conv2d (viewed as ``(out, in*k*k)``) weights,
    zero biases, LayerNorm ``(1, 0)``; tokens are left to the caller."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight.view(m.weight.shape[0], -1))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def uniform_noise(B: int, L: int, device: torch.device,
                  generator: Optional[Union[torch.Generator,
                                            Sequence[torch.Generator]]]
                  ) -> Tensor:
    """``(B, L)`` uniform noise from one generator or one per sample."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != B:
            raise ValueError(f'random_masking: got {len(generator)} '
                             f'generators for a batch of {B} samples.')
        return torch.stack([torch.rand(L, device=device, generator=g)
                            for g in generator])
    return torch.rand(B, L, device=device, generator=generator)


def check_sign(sign: float, key: str) -> None:
    """Raise unless ``sign`` is -1.0 (LMD) or 1.0 (MAE)."""
    if sign not in (-1.0, 1.0):
        raise ValueError(f'{key} must be -1.0 (LMD) or 1.0 (MAE), got '
                         f'{sign!r}.')


def check_patch_values(n: int, key: str) -> None:
    """Per-patch normalisation needs ``p*p*d >= 2`` values per patch."""
    if n < 2:
        raise ValueError(
            f'{key}: norm_target needs at least 2 values per patch (p*p*d), '
            f'got {n}; set norm_target=False or use a larger patch_size.')
