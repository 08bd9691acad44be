"""LMD code off the training forward path of ``lmd_vit.py``: config
geometry (derived once), latent-cache checks, inference methods (given
masks, de-normalisation, reconstruction, ``predict``), old-checkpoint keys.
"""
import copy
import inspect
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from lmd_toolkit.registry import MODELS
from .data_preprocessors.lmd_data_preprocessor import is_latent_batch
from .layers import (Generators, build_2d_sincos_pos_embed, gather_tokens,
                     ids_from_mask, init_transformer_weights,
                     is_pretrained_cfg, patchify, seeded_generators,
                     unpatchify)


VIT_ARCHS = {
    k: dict(embed_dims=c, num_layers=n, num_heads=h)
    for k, c, n, h in [('tiny', 192, 12, 3), ('small', 384, 12, 6),
                       ('base', 768, 12, 12), ('large', 1024, 24, 16),
                       ('huge', 1280, 32, 16)]
}


def check_arch(arch: Union[str, dict], zoo: Dict[str, dict]) -> dict:
    """An ``LMDViT`` arch name or dict -> dict with the three keys."""
    if isinstance(arch, str):
        if arch not in zoo:
            raise KeyError(f'LMDViT: unknown arch {arch!r}; choose one of '
                           f'{sorted(zoo)} or pass a dict.')
        arch = zoo[arch]
    missing = {'embed_dims', 'num_layers', 'num_heads'} - set(arch)
    if missing:
        raise KeyError(f'LMDViT: arch dict lacks keys {sorted(missing)}.')
    return arch


def _init_args(cfg: dict) -> set:
    cls = cfg['type']
    cls = MODELS.get(cls) if isinstance(cls, str) else cls
    if cls is None:
        raise KeyError(f'{cfg["type"]!r} is not registered in MODELS.')
    return set(inspect.signature(cls.__init__).parameters)


def _same(key: str, a, b) -> bool:
    if key == 'num_patches':  # L (a square grid) or (gh, gw)
        if isinstance(a, int):
            return b[0] == b[1] and a == b[0] * b[1]
        return tuple(a) == tuple(b)
    return a == b


def derive(cfg: dict, part: str, values: Dict[str, tuple]) -> dict:
    """Fill the keys of ``values`` (``key: (value, source key)``) that the
    part's class accepts; a config that states a different number raises,
    naming both keys. Returns a copy of ``cfg``."""
    cfg = copy.deepcopy(cfg)
    accepted = _init_args(cfg)
    for key, (value, source) in values.items():
        if key not in accepted:
            continue
        if key in cfg and not _same(key, cfg[key], value):
            raise ValueError(
                f'model.{part}.{key}={cfg[key]!r} contradicts {source}='
                f'{value!r}; remove model.{part}.{key} (it is derived).')
        cfg[key] = value
    return cfg


def build_parts(projector: nn.Module, backbone: dict, neck: Optional[dict],
                head: dict) -> Tuple[nn.Module, nn.Module, nn.Module]:
    """Build backbone, neck and head with their shapes stated once: the
    backbone's ``in_channels`` from the projector, the neck's and head's
    geometry from the backbone."""
    if neck is None:
        raise ValueError(
            'LatentMaskingDiffusion: model.neck is required (the backbone '
            "encodes, the neck predicts); LMDUNet pairs with neck=dict(type="
            "'LMDUNetDecoder').")
    d = projector.latent_channels
    bb = MODELS.build(derive(backbone, 'backbone', dict(
        in_channels=(d, 'model.projector.latent_channels'))))
    src = 'model.backbone.'
    values = dict(
        num_patches=(bb.grid_size, f'{src}latent_size / {src}patch_size'),
        patch_size=(bb.patch_size, f'{src}patch_size'),
        in_channels=(bb.in_channels, f'{src}in_channels'),
        embed_dims=(bb.embed_dims, f'{src}embed_dims (arch)'),
        with_cls_token=(bb.with_cls_token, f'{src}with_cls_token'))
    if hasattr(bb, 'norm_groups'):
        values['norm_groups'] = (bb.norm_groups, f'{src}norm_groups')
    neck = MODELS.build(derive(neck, 'neck', values))
    head = MODELS.build(derive(head, 'head', dict(
        patch_size=(bb.patch_size, f'{src}patch_size'))))
    return bb, neck, head


class ViTInferenceMixin:
    """``LMDViT`` off the training path: initialisation, a given mask, no
    mask."""

    def init_weights(self) -> None:
        """Initialise in code, unless ``init_cfg`` loads a checkpoint."""
        super().init_weights()
        if is_pretrained_cfg(self.init_cfg):
            return
        init_transformer_weights(self)
        if self.with_cls_token:
            nn.init.normal_(self.cls_token, std=0.02)
        self.pos_embed.data.copy_(build_2d_sincos_pos_embed(
            *self.grid_size, self.embed_dims, self.with_cls_token)[None])

    def forward_with_mask(self, z: Tensor,
                          mask: Tensor) -> Tuple[Tensor, Tensor]:
        """As ``forward_masked`` for a given ``mask (B, L)`` (1 = removed,
        the same count per row): ``x (B, 1+K, C)``, ``ids_restore (B, L)``.
        """
        ids_keep, ids_restore = ids_from_mask(mask)
        x = gather_tokens(self.embed(z), ids_keep)  # (B, K, C)
        return self.encode(x), ids_restore

    def forward_features(self, z: Tensor) -> Tensor:
        """All tokens, no masking: ``(B, d, h, w)`` -> ``(B, 1+L, C)``
        (``(B, L, C)`` without class token)."""
        return self.encode(self.embed(z))

    def forward(self, z: Tensor) -> Tensor:
        return self.forward_features(z)


class DecoderInitMixin:
    """``LMDDecoder``'s initialisation."""

    def init_weights(self) -> None:
        """Initialise in code, unless ``init_cfg`` loads a checkpoint."""
        super().init_weights()
        if is_pretrained_cfg(self.init_cfg):
            return
        init_transformer_weights(self)
        nn.init.normal_(self.mask_token, std=0.02)
        self.decoder_pos_embed.data.copy_(build_2d_sincos_pos_embed(
            *self.grid_size, self.decoder_pos_embed.shape[-1],
            self.with_cls_token)[None])


class HeadInferenceMixin:
    """``LatentReconstructionHead`` off the training path."""

    def denormalize(self, pred: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        """Inverse of the target normalisation for the given patch stats."""
        return pred * (var + self.eps)**0.5 + mean

    def paste_prediction(self, pred: Tensor, z: Tensor,
                         mask: Tensor) -> Tensor:
        """Latent ``(B, d, h, w)``: removed patches from ``pred`` (in latent
        units with each true patch's stats), visible ones from ``z``."""
        target = patchify(z, self.patch_size)  # (B, L, p*p*d)
        if self.norm_target:  # each removed patch's own stats (MAE figures)
            pred = self.denormalize(pred, *self.patch_stats(target))
        m = mask[..., None].to(pred.dtype)  # (B, L, 1)
        return unpatchify(target * (1 - m) + pred * m, self.patch_size,
                          z.shape[2], z.shape[3])


class LMDInferenceMixin:
    """``LatentMaskingDiffusion`` off the training path."""

    is_latent_batch = staticmethod(is_latent_batch)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Parameters a backbone moved to its neck (``moved_to_neck``) are
        # renamed, so that checkpoints of the old layout still load.
        for name in getattr(self.backbone, 'moved_to_neck', ()):
            old = f'{prefix}backbone.{name}.'
            for key in [k for k in state_dict if k.startswith(old)]:
                state_dict[f'{prefix}neck.{name}.{key[len(old):]}'] = \
                    state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def check_cached_latent(self, inputs: Tensor,
                            data_samples: list) -> Tensor:
        """Raise unless every cache in the batch was encoded by this model's
        projector (each cache checked once) and has the backbone's shape."""
        for sample in data_samples:
            meta = sample if isinstance(sample, dict) else sample.metainfo
            source = meta.get('latent_source')
            if source is None:
                raise ValueError(
                    "LatentMaskingDiffusion: latent inputs (input_type="
                    "'latent') need the metainfo 'latent_source' (the "
                    "cache's projector fingerprint) to be checked against "
                    'the projector; serve them with LatentCacheDataset.')
            key = repr(sorted(source.items()))
            if key not in self._verified_sources:
                self.projector.check_fingerprint(source)
                self._verified_sources.add(key)
        d, size = self.projector.latent_channels, self.backbone.latent_size
        if inputs.ndim != 4 or inputs.shape[1] != d or tuple(
                inputs.shape[2:]) != size:
            raise ValueError(
                f'LatentMaskingDiffusion: cached latents of shape '
                f'{tuple(inputs.shape[1:])}, but the model expects '
                f'({d}, *{size}) (projector.latent_channels, backbone.'
                'latent_size); make the cache from images of the matching '
                'size.')
        return inputs

    def check_latent_size(self, z: Tensor, inputs: Tensor) -> Tensor:
        """Raise unless the projector's latent has ``backbone.latent_size``."""
        if tuple(z.shape[2:]) != self.backbone.latent_size:
            f = self.projector.downsample_factor
            raise ValueError(
                f'LatentMaskingDiffusion: image size {tuple(inputs.shape[2:])}'
                f' / projector.downsample_factor {f} = latent '
                f'{tuple(z.shape[2:])}, but backbone.latent_size = '
                f'{self.backbone.latent_size}; set backbone.latent_size or '
                'resize the images.')
        return z

    def predict_with_mask(self, z: Tensor, mask: Tensor) -> Tensor:
        """Predict every patch of latent ``z (B, d, h, w)`` from the tokens
        ``mask (B, L)`` keeps (1 = removed; for ``LMDViT`` the same count
        per row, ``K = 0`` allowed): ``(B, L, p*p*d)``, the head's units."""
        x, ids_restore = self.backbone.forward_with_mask(z, mask)
        return self.neck(x, ids_restore)

    def denormalize_prediction(self, pred: Tensor, z: Tensor,
                               visible: Tensor) -> Tensor:
        """Predictions ``(B, L, p*p*d)`` in the head's units -> float32
        latent patches, WITHOUT the removed patches' own statistics.

        With ``head.norm_target`` every prediction is scaled by the mean
        per-patch variance and shifted by the mean per-patch mean of the
        sample's visible patches (``visible (B, L)``, 1 = visible), the
        rule of inpainting and sampling; ``reconstruct`` instead pastes with
        each patch's own statistics (the MAE figures).
        """
        pred = pred.float()
        if not self.head.norm_target:
            return pred
        if bool((visible.sum(1) == 0).any()):
            raise ValueError(
                'this model predicts per-patch normalised latents '
                '(head.norm_target=True) and a sample has no visible patch '
                'to take statistics from; start from mask ratio < 1 or use '
                'a model trained with norm_target=False.')
        target = patchify(z.float(), self.backbone.patch_size)  # (B, L, D)
        mean, var = self.head.patch_stats(target)  # (B, L, 1) each
        w = visible[..., None].float()
        count = w.sum(1, keepdim=True)
        return self.head.denormalize(pred, (mean * w).sum(1, True) / count,
                                     (var * w).sum(1, True) / count)

    @torch.no_grad()
    def reconstruct(self, inputs: Tensor, mask_ratio: Optional[float],
                    generator: Optional[Generators] = None,
                    data_samples: Optional[list] = None,
                    mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Mask (at ``mask_ratio``, or the given ``mask (B, L)``), predict
        and decode a batch, without gradients.

        Args:
            inputs (Tensor): Images ``(B, 3, H, W)`` in [-1, 1] or cached
                latents ``(B, d, h, w)``.
            mask_ratio (float, optional): Fraction of tokens removed; unused
                with ``mask``.
            generator (torch.Generator | list, optional): One for the batch
                or one per sample, for reproducible masks.
            data_samples (list, optional): Say whether inputs are latents.
            mask (Tensor, optional): A given mask, 1 = removed; rows may
                remove different counts (run in groups).

        Returns:
            dict: ``latent``, ``pred_latent`` ``(B, d, h, w)`` (visible
            patches from ``latent``, removed ones predicted), ``mask (B,
            L)``, ``pred_img (B, 3, H, W)`` (about [-1, 1]).
        """
        z = self.to_latent(inputs, data_samples)
        if mask is None:
            pred, mask = self.predict_masked(z, mask_ratio, generator)
        else:
            keep = (mask == 0).sum(1)
            pred = None
            for count in torch.unique(keep):
                rows = (keep == count).nonzero().flatten()
                part = self.predict_with_mask(z[rows], mask[rows])
                if pred is None:
                    pred = z.new_empty(z.shape[0], *part.shape[1:])
                pred[rows] = part.float()
        pred_latent = self.head.paste_prediction(pred, z, mask)
        return dict(latent=z, pred_latent=pred_latent, mask=mask,
                    pred_img=self.projector.decode(pred_latent))

    def predict(self, inputs: Tensor, data_samples: Optional[list] = None,
                mask_ratio: Optional[float] = None, seed: Optional[int] = None
                ) -> List[Dict[str, Union[Tensor, float]]]:
        """Reconstruct at ``mask_ratio`` (default ``eval_mask_ratio``).

        Every sample's mask comes from its own generator, seeded by ``seed``
        (default ``eval_seed``) and its ``sample_idx`` (else its position),
        so a validation score depends on neither batch size nor process
        count. One dict per sample: ``gt_img``, ``pred_img``,
        ``masked_img`` (float32 ``(3, H, W)`` in [0, 255]), ``mask (L,)``,
        ``gt_latent``, ``pred_latent (d, h, w)``, ``mask_ratio``. For cached
        latents ``gt_img`` is the projector's decoding of the latent.
        """
        mask_ratio = self.eval_mask_ratio if mask_ratio is None else mask_ratio
        seed = self.eval_seed if seed is None else seed
        indices = [_sample_index(data_samples, i)
                   for i in range(inputs.shape[0])]
        generators = seeded_generators(seed, indices, inputs.device)
        out = self.reconstruct(inputs, mask_ratio, generators, data_samples)
        if self.is_latent_batch(data_samples):
            inputs = self.projector.decode(out['latent'])  # (B, 3, H, W)
        B, _, H, W = inputs.shape
        gh, gw = self.backbone.grid_size
        patch_mask = out['mask'].reshape(B, 1, gh, gw)  # 1 = removed
        pixel_mask = patch_mask.repeat_interleave(H // gh, 2)
        pixel_mask = pixel_mask.repeat_interleave(W // gw, 3)  # (B, 1, H, W)
        masked = inputs * (1 - pixel_mask)  # grey (0 in [-1, 1]) if removed

        def to_uint8_range(img: Tensor) -> Tensor:
            return ((img.float() + 1) * 127.5).clamp(0, 255)

        return [
            dict(gt_img=to_uint8_range(inputs[i]),
                 pred_img=to_uint8_range(out['pred_img'][i]),
                 masked_img=to_uint8_range(masked[i]),
                 mask=out['mask'][i],
                 gt_latent=out['latent'][i],
                 pred_latent=out['pred_latent'][i],
                 mask_ratio=float(mask_ratio)) for i in range(B)
        ]


def _sample_index(data_samples: Optional[list], position: int) -> int:
    """``sample_idx`` of a data sample (mmpretrain ``DataSample`` or dict)
    when present, else its position in the batch."""
    if data_samples is None or position >= len(data_samples):
        return position
    sample = data_samples[position]
    if isinstance(sample, dict):
        index = sample.get('sample_idx')
    else:
        index = getattr(sample, 'metainfo', {}).get('sample_idx')
    return position if index is None else int(index)
