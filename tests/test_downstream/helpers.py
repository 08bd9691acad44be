"""Tiny LMD pretraining models and latent classifiers for the tests."""
import copy
from typing import Optional

import torch

from lmd_toolkit.registry import MODELS
from lmd_toolkit.utils import register_all_modules

register_all_modules()

ENCODER = dict(type='LMDViT', arch=dict(embed_dims=32, num_layers=3,
                                         num_heads=2))
KL_PROJECTOR = dict(type='KLVAEProjector', preset='tiny-f8', checkpoint=None)


def lmd_model(projector: dict, img_size: int = 32, patch: int = 2):
    """A tiny ``LatentMaskingDiffusion`` with random weights."""
    latent_channels = 4 if projector['type'] == 'KLVAEProjector' else 3
    latent = img_size // 8 if projector['type'] == 'KLVAEProjector' \
        else img_size
    encoder = dict(ENCODER, in_channels=latent_channels, latent_size=latent,
                   patch_size=patch)
    model = MODELS.build(
        dict(
            type='LatentMaskingDiffusion',
            projector=copy.deepcopy(projector),
            backbone=encoder,
            neck=dict(
                type='LMDDecoder', num_patches=(latent // patch)**2,
                patch_size=patch, in_channels=latent_channels,
                embed_dims=32, decoder_embed_dims=16, decoder_depth=1,
                decoder_num_heads=2),
            head=dict(type='LatentReconstructionHead', patch_size=patch)))
    model.init_weights()
    return model


def classifier_cfg(projector: dict,
                   img_size: int = 32,
                   patch: int = 2,
                   checkpoint: Optional[str] = None,
                   **backbone_kwargs) -> dict:
    latent_channels = 4 if projector['type'] == 'KLVAEProjector' else 3
    latent = img_size // 8 if projector['type'] == 'KLVAEProjector' \
        else img_size
    backbone = dict(
        type='LatentViTBackbone',
        projector=copy.deepcopy(projector),
        encoder=dict(ENCODER, in_channels=latent_channels,
                     latent_size=latent, patch_size=patch),
        **backbone_kwargs)
    if checkpoint is not None:
        backbone['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint,
                                    prefix='backbone.')
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=backbone,
        head=dict(type='mmpretrain.LinearClsHead', num_classes=10,
                  in_channels=32,
                  loss=dict(type='mmpretrain.CrossEntropyLoss')),
        data_preprocessor=dict(
            type='mmpretrain.ClsDataPreprocessor', num_classes=10,
            mean=[127.5] * 3, std=[127.5] * 3, to_rgb=False))


def uint8_batch(n: int = 4, size: int = 32, seed: int = 0) -> dict:
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 256, (n, 3, size, size), generator=g,
                         dtype=torch.uint8)
    samples = [DataSample().set_gt_label(i % 10) for i in range(n)]
    return dict(inputs=list(imgs), data_samples=samples)
