"""Latent Masking Diffusion: the algorithm that wires the parts together."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor

from lmd_toolkit.registry import MODELS
from ..data_preprocessors.lmd_data_preprocessor import is_latent_batch
from ..layers.masking import Generators, seeded_generators


@MODELS.register_module()
class LatentMaskingDiffusion(BaseModel):
    """LMD: masked reconstruction of a frozen projector's latent.

    Paper: `LMD: Faster Image Reconstruction with Latent Masking Diffusion
    <https://arxiv.org/abs/2312.07971>`_. Training step::

        z = projector.encode(x)                                 # (B, d, h, w)
        x, mask, ids = backbone.forward_masked(z, mask_ratio)   # (B, 1+K, C)
        pred = neck(x, ids)                                     # (B, L, p*p*d)
        loss = head.loss(pred, z, mask)                         # masked MSE

    A backbone that predicts the full latent itself (``LMDUNet``, the
    "w/o MAE" ablation) is used with ``neck=None``: its first output is
    ``pred``.

    Batches from a ``LatentCacheDataset`` (data samples with
    ``input_type='latent'``) are latents already: ``projector.encode`` is
    skipped, after checking that the cache was made by this projector (type,
    preset, options, checkpoint SHA-256, scale factor; see
    docs/en/latent_cache.md).

    Args:
        projector (dict): Config of the frozen projector (a
            ``BaseProjector``); built, then frozen and kept in eval mode.
        backbone (dict): Config of the encoder, e.g. ``LMDViT``.
        neck (dict, optional): Config of the decoder, e.g. ``LMDDecoder``;
            None when the backbone predicts the latent patches itself
            (``LMDUNet``).
        head (dict): Config of the loss head, e.g.
            ``LatentReconstructionHead``.
        mask_ratio (float): Current training mask ratio; a
            ``MaskRatioSchedulerHook`` overwrites ``model.mask_ratio`` before
            every training iteration. Defaults to 0.75.
        eval_mask_ratio (float): Mask ratio of ``predict`` mode.
            Defaults to 0.5.
        eval_seed (int): Seed of the generator that draws ``predict`` masks,
            so that validation is comparable across checkpoints.
            Defaults to 0.
        data_preprocessor (dict, optional): Defaults to
            ``dict(type='LMDDataPreprocessor')``.
        init_cfg (dict, optional): ``dict(type='Pretrained', ...)`` to load a
            whole-model checkpoint. Defaults to None.
    """

    def __init__(self,
                 projector: dict,
                 backbone: dict,
                 neck: Optional[dict],
                 head: dict,
                 mask_ratio: float = 0.75,
                 eval_mask_ratio: float = 0.5,
                 eval_seed: int = 0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='LMDDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.projector = MODELS.build(projector).freeze()
        self.backbone = MODELS.build(backbone)
        self.neck = None if neck is None else MODELS.build(neck)
        self.head = MODELS.build(head)
        self.mask_ratio = mask_ratio
        self.eval_mask_ratio = eval_mask_ratio
        self.eval_seed = eval_seed
        self._verified_sources = set()  # latent caches checked already
        self._check_consistency()

    def _check_consistency(self) -> None:
        """Raise if the configs of the parts disagree (names the keys)."""
        bb, neck, head = self.backbone, self.neck, self.head
        pairs = [
            ('projector.latent_channels', self.projector.latent_channels,
             'backbone.in_channels', bb.in_channels),
            ('neck.in_channels', getattr(neck, 'in_channels', None),
             'backbone.in_channels', bb.in_channels),
            ('neck.patch_size', getattr(neck, 'patch_size', None),
             'backbone.patch_size', bb.patch_size),
            ('head.patch_size', getattr(head, 'patch_size', None),
             'backbone.patch_size', bb.patch_size),
            ('neck.embed_dims', getattr(neck, 'embed_dims', None),
             'backbone.embed_dims', bb.embed_dims),
            ('neck.num_patches (grid)', getattr(neck, 'grid_size', None),
             'backbone.latent_size / patch_size', bb.grid_size),
            ('neck.with_cls_token', getattr(neck, 'with_cls_token', None),
             'backbone.with_cls_token', bb.with_cls_token),
        ]
        for key_a, a, key_b, b in pairs:
            if a is not None and a != b:
                raise ValueError(f'LatentMaskingDiffusion: {key_a} = {a} but '
                                 f'{key_b} = {b}; make them equal.')

    def _check_latent_source(self, data_samples: list) -> None:
        """Raise unless every cache in the batch was encoded by this model's
        projector (each distinct cache is checked once)."""
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

    def _encode(self,
                inputs: Tensor,
                data_samples: Optional[list] = None) -> Tensor:
        """Images ``(B, 3, H, W)`` -> latent ``(B, d, h, w)``, checked
        against ``backbone.latent_size``. A latent batch (data samples with
        ``input_type='latent'``) is checked against the projector and
        returned as is."""
        if is_latent_batch(data_samples):
            self._check_latent_source(data_samples)
            d = self.projector.latent_channels
            if inputs.ndim != 4 or inputs.shape[1] != d or tuple(
                    inputs.shape[2:]) != self.backbone.latent_size:
                raise ValueError(
                    f'LatentMaskingDiffusion: cached latents of shape '
                    f'{tuple(inputs.shape[1:])}, but the model expects '
                    f'({d}, *{self.backbone.latent_size}) (projector.'
                    'latent_channels, backbone.latent_size); make the cache '
                    'from images of the matching size.')
            return inputs
        z = self.projector.encode(inputs)
        if tuple(z.shape[2:]) != self.backbone.latent_size:
            f = self.projector.downsample_factor
            raise ValueError(
                f'LatentMaskingDiffusion: image size {tuple(inputs.shape[2:])}'
                f' / projector.downsample_factor {f} = latent '
                f'{tuple(z.shape[2:])}, but backbone.latent_size = '
                f'{self.backbone.latent_size}; set backbone.latent_size (and '
                f'neck.num_patches) or resize the images.')
        return z

    def loss(self,
             inputs: Tensor,
             data_samples: Optional[list] = None) -> Dict[str, Tensor]:
        """Masked latent reconstruction loss at ``self.mask_ratio``.

        Args:
            inputs (Tensor): Images ``(B, 3, H, W)`` in [-1, 1], or cached
                latents ``(B, d, h, w)``.
            data_samples (list, optional): Say whether ``inputs`` are cached
                latents (``input_type='latent'``).

        Returns:
            dict: ``loss``, a scalar tensor.
        """
        z = self._encode(inputs, data_samples)
        pred, mask = self._predict(z, self.mask_ratio)
        return dict(loss=self.head.loss(pred, z, mask))

    def _predict(self,
                 z: Tensor,
                 mask_ratio: float,
                 generator: Optional[Generators] = None
                 ) -> Tuple[Tensor, Tensor]:
        """Mask, encode, decode: latent ``(B, d, h, w)`` -> ``pred (B, L,
        p*p*d)`` and ``mask (B, L)`` (1 = removed)."""
        x, mask, ids_restore = self.backbone.forward_masked(
            z, mask_ratio, generator)
        if self.neck is None:  # the backbone predicted the patches
            return x, mask
        return self.neck(x, ids_restore), mask

    @torch.no_grad()
    def reconstruct(
            self,
            inputs: Tensor,
            mask_ratio: float,
            generator: Optional[Generators] = None,
            data_samples: Optional[list] = None) -> Dict[str, Tensor]:
        """Mask, predict and decode a batch (no gradients).

        Args:
            inputs (Tensor): Images ``(B, 3, H, W)`` in [-1, 1], or cached
                latents ``(B, d, h, w)``.
            mask_ratio (float): Fraction of latent tokens removed.
            generator (torch.Generator | list, optional): For reproducible
                masks, one for the batch or one per sample.
            data_samples (list, optional): Say whether ``inputs`` are cached
                latents.

        Returns:
            dict: ``latent`` ``(B, d, h, w)``; ``pred_latent`` ``(B, d, h,
            w)`` (visible patches from ``latent``, masked ones predicted);
            ``mask`` ``(B, L)`` (1 = removed); ``pred_img`` ``(B, 3, H, W)``,
            the projector decoding of ``pred_latent`` (about [-1, 1]).
        """
        z = self._encode(inputs, data_samples)
        pred, mask = self._predict(z, mask_ratio, generator)
        pred_latent = self.head.paste_prediction(pred, z, mask)
        return dict(latent=z,
                    pred_latent=pred_latent,
                    mask=mask,
                    pred_img=self.projector.decode(pred_latent))

    def predict(self,
                inputs: Tensor,
                data_samples: Optional[list] = None,
                mask_ratio: Optional[float] = None,
                seed: Optional[int] = None
                ) -> List[Dict[str, Union[Tensor, float]]]:
        """Reconstruct at ``mask_ratio`` (default ``eval_mask_ratio``).

        Every sample's mask comes from its own generator, seeded by ``seed``
        (default ``eval_seed``) and the sample's ``sample_idx`` (from
        ``data_samples``; its position in the batch otherwise), so a
        validation score does not depend on batch size or the number of
        processes. One dict per sample, images in [0, 255] float32. For
        cached latents, ``gt_img`` is the projector's decoding of the cached
        latent (the cache holds no pixels).
        """
        mask_ratio = self.eval_mask_ratio if mask_ratio is None else mask_ratio
        seed = self.eval_seed if seed is None else seed
        indices = [
            _sample_index(data_samples, i) for i in range(inputs.shape[0])
        ]
        generators = seeded_generators(seed, indices, inputs.device)
        out = self.reconstruct(inputs, mask_ratio, generators, data_samples)
        if is_latent_batch(data_samples):
            inputs = self.projector.decode(out['latent'])  # (B, 3, H, W)
        B, _, H, W = inputs.shape
        gh, gw = self.backbone.grid_size
        patch_mask = out['mask'].reshape(B, 1, gh, gw)
        # (B, 1, H, W), 1 = removed
        pixel_mask = patch_mask.repeat_interleave(H // gh, 2)
        pixel_mask = pixel_mask.repeat_interleave(W // gw, 3)
        masked = inputs * (1 - pixel_mask)  # grey (0 in [-1, 1]) when removed

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

    def forward(
        self,
        inputs: Tensor,
        data_samples: Optional[list] = None,
        mode: str = 'tensor'
    ) -> Union[Dict[str, Tensor], Tuple[Tensor, Tensor], List[dict]]:
        """Dispatch on ``mode``.

        Args:
            inputs (Tensor): Images ``(B, 3, H, W)`` in [-1, 1], or cached
                latents ``(B, d, h, w)`` (output of the data preprocessor).
            data_samples (list, optional): Sample indices for ``predict``
                masks; ``input_type='latent'`` marks cached latents.
                Defaults to None.
            mode (str): 'loss', 'tensor' or 'predict'. Defaults to 'tensor'.

        Returns:
            dict | tuple | list: 'loss': ``dict(loss=...)``; 'tensor':
            ``(pred (B, L, p*p*d), mask (B, L))`` at ``self.mask_ratio``;
            'predict': a list of B dicts with ``gt_img``, ``pred_img``,
            ``masked_img`` (float32 ``(3, H, W)`` in [0, 255]), ``mask``
            ``(L,)``, ``gt_latent``, ``pred_latent`` ``(d, h, w)`` and
            ``mask_ratio`` (float).
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            z = self._encode(inputs, data_samples)
            return self._predict(z, self.mask_ratio)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'LatentMaskingDiffusion: mode must be "loss", '
                         f'"tensor" or "predict", got {mode!r}.')


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
