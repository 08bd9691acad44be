"""Shapes are stated once: the algorithm derives the neck's and head's
geometry from the projector and backbone; a contradicting number raises,
naming both keys. One ratio -> token-count rule for the whole toolkit."""
import pytest
import torch

from lmd_toolkit.models.layers import num_kept_tokens, random_masking
from lmd_toolkit.registry import MODELS


def minimal_cfg(**parts):
    """The tiny ViT config of the algorithm tests with every derived number
    removed."""
    cfg = dict(type='LatentMaskingDiffusion',
               projector=dict(type='IdentityProjector'),
               backbone=dict(type='LMDViT',
                             arch=dict(embed_dims=64, num_layers=1,
                                       num_heads=4),
                             latent_size=(16, 24), patch_size=4),
               neck=dict(type='LMDDecoder', decoder_embed_dims=32,
                         decoder_depth=1, decoder_num_heads=4),
               head=dict(type='LatentReconstructionHead', norm_target=False))
    for part, values in parts.items():
        cfg[part].update(values)
    return cfg


def test_geometry_is_derived():
    model = MODELS.build(minimal_cfg())
    assert model.backbone.in_channels == 3  # projector.latent_channels
    assert model.neck.grid_size == (4, 6)
    assert (model.neck.patch_size, model.neck.in_channels,
            model.neck.embed_dims) == (4, 3, 64)
    assert model.neck.with_cls_token is True
    assert model.head.patch_size == 4
    loss = model(torch.rand(2, 3, 16, 24) * 2 - 1, mode='loss')['loss']
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_consistent_redundant_numbers_are_accepted():
    cfg = minimal_cfg(backbone=dict(in_channels=3),
                      neck=dict(num_patches=(4, 6), patch_size=4,
                                in_channels=3, embed_dims=64),
                      head=dict(patch_size=4))
    assert MODELS.build(cfg).neck.grid_size == (4, 6)
    square = minimal_cfg(backbone=dict(latent_size=16),
                         neck=dict(num_patches=16))
    assert MODELS.build(square).neck.grid_size == (4, 4)


@pytest.mark.parametrize('part,key,value,source', [
    ('neck', 'patch_size', 2, 'model.backbone.patch_size=4'),
    ('head', 'patch_size', 2, 'model.backbone.patch_size=4'),
    ('neck', 'in_channels', 4, 'model.backbone.in_channels=3'),
    ('neck', 'embed_dims', 48, 'model.backbone.embed_dims (arch)=64'),
    ('neck', 'num_patches', 24, 'model.backbone.latent_size / '
     'model.backbone.patch_size=(4, 6)'),
    ('neck', 'with_cls_token', False, 'model.backbone.with_cls_token=True'),
    ('backbone', 'in_channels', 4, 'model.projector.latent_channels=3'),
])
def test_contradicting_number_names_both_keys(part, key, value, source):
    with pytest.raises(ValueError) as err:
        MODELS.build(minimal_cfg(**{part: {key: value}}))
    message = str(err.value)
    assert f'model.{part}.{key}={value!r} contradicts {source}' in message
    assert f'remove model.{part}.{key}' in message


def test_unet_neck_geometry_is_derived():
    cfg = dict(type='LatentMaskingDiffusion',
               projector=dict(type='IdentityProjector'),
               backbone=dict(type='LMDUNet', latent_size=16, patch_size=4,
                             base_channels=16, channel_mults=(2, 1),
                             num_res_blocks=1, norm_groups=4),
               neck=dict(type='LMDUNetDecoder'),
               head=dict(type='LatentReconstructionHead'))
    model = MODELS.build(cfg)
    assert (model.neck.embed_dims, model.neck.in_channels,
            model.neck.patch_size) == (32, 3, 4)
    assert model.neck.norm_out.num_groups == 4
    cfg['neck']['norm_groups'] = 8
    with pytest.raises(ValueError, match='model.neck.norm_groups=8 '
                       'contradicts model.backbone.norm_groups=4'):
        MODELS.build(cfg)


def test_mask_ratio_is_optional():
    cfg = minimal_cfg()
    assert 'mask_ratio' not in cfg
    model = MODELS.build(cfg)
    model.mask_ratio = 0.25  # what MaskRatioSchedulerHook does
    _, mask = model(torch.zeros(1, 3, 16, 24), mode='tensor')
    assert int(mask.sum()) == 24 - num_kept_tokens(24, 0.25)


@pytest.mark.parametrize('L', [1, 7, 16, 64, 196, 784])
@pytest.mark.parametrize('ratio', [0.0, 0.15, 0.3, 0.5, 0.6, 0.75, 0.9])
def test_num_kept_tokens_formula(L, ratio):
    assert num_kept_tokens(L, ratio) == int(L * (1 - ratio))
    _, mask, _ = random_masking(torch.zeros(2, L, 1), ratio)
    assert mask.sum(1).tolist() == [L - num_kept_tokens(L, ratio)] * 2


def test_num_kept_tokens_fully_masked():
    assert num_kept_tokens(64, 1.0) == 0
