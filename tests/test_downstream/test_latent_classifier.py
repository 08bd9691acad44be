"""LatentViTBackbone inside mmpretrain's ImageClassifier; loading LMD
pretraining weights (converter and init_cfg), new latent grids."""
import importlib.util
import os
import os.path as osp

import pytest
import torch
from mmengine.runner import load_checkpoint

from lmd_toolkit.models.layers import build_2d_sincos_pos_embed
from lmd_toolkit.registry import MODELS

from helpers import (KL_PROJECTOR, classifier_cfg, lmd_model,  # noqa: I100
                     uint8_batch)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
IDENTITY = dict(type='IdentityProjector')
CONVERTER = osp.join(ROOT, 'tools', 'model_converters', 'lmd_to_mmpretrain.py')
NEW_KEYS = {'head.fc.weight', 'head.fc.bias', 'backbone.fc_norm.weight',
            'backbone.fc_norm.bias'}


@pytest.fixture(scope='module')
def kl_pretrained(tmp_path_factory):
    """A tiny LMD with a KL projector (32 px -> 4 x 4 x 4, patch 2), one
    optimisation step away from init so every tensor is distinctive."""
    torch.manual_seed(0)
    model = lmd_model(KL_PROJECTOR, img_size=32, patch=2)
    path = str(tmp_path_factory.mktemp('lmd') / 'lmd.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=1)), path)
    return model, path


@pytest.mark.parametrize('projector,pool', [(IDENTITY, 'avg'),
                                             (KL_PROJECTOR, 'cls')],
                         ids=['identity-avg', 'kl-cls'])
def test_forward_loss_predict(projector, pool):
    model = MODELS.build(classifier_cfg(projector, global_pool=pool))
    model.init_weights()
    data = model.data_preprocessor(uint8_batch(), training=True)
    assert data['inputs'].min() >= -1 and data['inputs'].max() <= 1
    feats = model.extract_feat(data['inputs'])
    assert isinstance(feats, tuple) and feats[0].shape == (4, 32)
    losses = model(**data, mode='loss')
    losses['loss'].backward()
    assert all(p.grad is None for p in model.backbone.projector.parameters())
    assert model.backbone.encoder.blocks[0].attn.qkv.weight.grad is not None
    preds = model(**data, mode='predict')
    assert preds[0].pred_score.shape == (10, )


def test_freeze_encoder_for_linear_probe():
    cfg = classifier_cfg(IDENTITY, freeze_encoder=True, use_fc_norm=False)
    cfg['neck'] = dict(type='mmpretrain.ClsBatchNormNeck', input_features=32)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {'head.fc.weight', 'head.fc.bias'}
    assert not model.backbone.encoder.training
    assert model.neck.training
    before = model.backbone.encoder.state_dict()
    data = model.data_preprocessor(uint8_batch(), training=True)
    model(**data, mode='loss')['loss'].backward()
    assert all(torch.equal(before[k], v)
               for k, v in model.backbone.encoder.state_dict().items())


def test_frozen_stages_freezes_the_first_blocks():
    model = MODELS.build(classifier_cfg(IDENTITY, frozen_stages=2))
    enc = model.backbone.encoder
    assert not enc.patch_embed.proj.weight.requires_grad
    assert not enc.cls_token.requires_grad
    assert not any(p.requires_grad for p in enc.blocks[1].parameters())
    assert all(p.requires_grad for p in enc.blocks[2].parameters())
    assert enc.norm.weight.requires_grad


def load_converter():
    spec = importlib.util.spec_from_file_location('lmd_to_mmpretrain',
                                                  CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def encoder_tensors_equal(lmd, classifier):
    source = lmd.backbone.state_dict()
    target = classifier.backbone.encoder.state_dict()
    assert set(source) == set(target)
    return all(torch.equal(source[k], target[k]) for k in source)


def test_converter_round_trip(kl_pretrained, tmp_path, capsys):
    lmd, src = kl_pretrained
    dst = str(tmp_path / 'cls.pth')
    converter = load_converter()
    assert converter.main([src, dst]) == 0
    assert 'dropped' in capsys.readouterr().out
    stamp = os.stat(dst).st_mtime_ns
    # Never overwrite without --force.
    assert converter.main([src, dst]) == 1
    assert '--force' in capsys.readouterr().err
    assert os.stat(dst).st_mtime_ns == stamp

    converted = torch.load(dst, map_location='cpu', weights_only=True)
    dropped = set(converted['meta']['dropped_keys'])
    lmd_keys = set(lmd.state_dict())
    assert dropped == {k for k in lmd_keys if k.startswith(('neck.', 'head.'))}
    assert dropped  # the decoder is there to drop

    classifier = MODELS.build(classifier_cfg(KL_PROJECTOR))
    classifier.init_weights()
    result = classifier.load_state_dict(converted['state_dict'], strict=False)
    assert set(result.missing_keys) == NEW_KEYS
    assert result.unexpected_keys == []
    assert encoder_tensors_equal(lmd, classifier)
    proj_src = lmd.projector.state_dict()
    proj_dst = classifier.backbone.projector.state_dict()
    assert proj_src and all(torch.equal(proj_src[k], proj_dst[k])
                            for k in proj_src)
    # mmengine's load_from path reads it too.
    fresh = MODELS.build(classifier_cfg(KL_PROJECTOR))
    load_checkpoint(fresh, dst, map_location='cpu')
    assert encoder_tensors_equal(lmd, fresh)


def test_init_cfg_pretrained_loads_the_encoder(kl_pretrained):
    lmd, src = kl_pretrained
    classifier = MODELS.build(classifier_cfg(KL_PROJECTOR, checkpoint=src))
    report = classifier.backbone.load_pretrained(src, 'backbone.')
    assert report == dict(missing=[], unexpected=[], rebuilt=[])
    classifier = MODELS.build(classifier_cfg(KL_PROJECTOR, checkpoint=src))
    classifier.init_weights()
    assert encoder_tensors_equal(lmd, classifier)


def test_different_latent_grid_rebuilds_pos_embed(kl_pretrained):
    lmd, src = kl_pretrained
    # 48 px -> 6 x 6 latent -> 3 x 3 tokens instead of 2 x 2.
    classifier = MODELS.build(
        classifier_cfg(KL_PROJECTOR, img_size=48, checkpoint=src))
    classifier.init_weights()
    report = classifier.backbone.load_pretrained(src, 'backbone.')
    assert report['rebuilt'] == ['pos_embed'] and not report['missing']
    enc = classifier.backbone.encoder
    expected = build_2d_sincos_pos_embed(3, 3, 32, cls_token=True)[None]
    assert torch.allclose(enc.pos_embed, expected.float())
    source = lmd.backbone.state_dict()
    assert all(torch.equal(source[k], v) for k, v in enc.state_dict().items()
               if k != 'pos_embed')
    data = classifier.data_preprocessor(uint8_batch(2, size=48), False)
    assert classifier(data['inputs'], mode='tensor').shape == (2, 10)
