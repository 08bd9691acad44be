import numpy as np
import pytest
import torch
from mmengine.optim import DefaultOptimWrapperConstructor

from lmd_toolkit.models import IdentityProjector, LatentMaskingDiffusion
from lmd_toolkit.registry import MODELS


def tiny_cfg(img=32, p=4, norm_target=True, **kwargs):
    grid = img // p
    cfg = dict(type='LatentMaskingDiffusion',
               projector=dict(type='IdentityProjector'),
               backbone=dict(type='LMDViT',
                             arch=dict(embed_dims=64,
                                       num_layers=2,
                                       num_heads=4),
                             in_channels=3,
                             latent_size=img,
                             patch_size=p),
               neck=dict(type='LMDDecoder',
                         num_patches=grid * grid,
                         patch_size=p,
                         in_channels=3,
                         embed_dims=64,
                         decoder_embed_dims=32,
                         decoder_depth=1,
                         decoder_num_heads=4),
               head=dict(type='LatentReconstructionHead',
                         patch_size=p,
                         norm_target=norm_target))
    cfg.update(kwargs)
    return cfg


def astronaut_batch(n=8, size=32):
    """Fixed real batch: uint8 crops (n, 3, size, size) of astronaut()."""
    from skimage.data import astronaut
    img = astronaut()[::4, ::4]  # (128, 128, 3)
    crops = [
        img[y:y + size, x:x + size] for y in range(0, 128, size)
        for x in range(0, 128, size)
    ][:n]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


pytestmark = pytest.mark.usefixtures('single_thread')


def build(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(**kwargs))
    model.init_weights()
    return model


def test_identity_projector():
    proj = IdentityProjector(scale_factor=2.0)
    x = torch.rand(1, 3, 4, 4) * 2 - 1
    torch.testing.assert_close(proj.encode(x), 2 * x)
    torch.testing.assert_close(proj.decode(proj.encode(x)), x)
    assert (proj.latent_channels, proj.downsample_factor) == (3, 1)
    proj.train()
    assert not proj.training


@pytest.mark.parametrize('norm_target', [True, False])
def test_tiny_model_learns_a_real_batch(norm_target):
    model = build(norm_target=norm_target)
    model.mask_ratio = 0.5
    data = model.data_preprocessor(dict(inputs=astronaut_batch()), True)
    optim = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=2e-3)
    torch.manual_seed(1)
    losses = []
    for _ in range(30):
        loss = model(**data, mode='loss')['loss']
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    print(f'\nnorm_target={norm_target}: loss {first:.4f} -> {last:.4f}')
    assert last < 0.6 * first


def test_predict_shapes_and_values():
    model = build().eval()
    data = model.data_preprocessor(dict(inputs=astronaut_batch(2)))
    out = model(**data, mode='predict')
    assert len(out) == 2
    for sample, raw in zip(out, astronaut_batch(2)):
        for key in ('gt_img', 'pred_img', 'masked_img'):
            assert sample[key].shape == (3, 32, 32)
            assert sample[key].dtype == torch.float32
            assert 0 <= sample[key].min() and sample[key].max() <= 255
        torch.testing.assert_close(sample['gt_img'], raw.float())
        assert sample['mask'].shape == (64, )
        assert sample['mask'].sum() == 32  # eval_mask_ratio 0.5
        assert sample['gt_latent'].shape == sample['pred_latent'].shape == (
            3, 32, 32)
        assert sample['mask_ratio'] == 0.5
        # grey where removed, untouched where visible
        pix = sample['mask'].reshape(8, 8).repeat_interleave(
            4, 0).repeat_interleave(4, 1).bool()
        assert torch.all(sample['masked_img'][:, pix] == 127.5)
        torch.testing.assert_close(sample['masked_img'][:, ~pix],
                                   sample['gt_img'][:, ~pix])
        # visible patches of the pasted latent are the input latent
        torch.testing.assert_close(sample['pred_latent'][:, ~pix],
                                   sample['gt_latent'][:, ~pix])
    # same seed -> same masks on a second call
    again = model(**data, mode='predict')
    assert torch.equal(again[0]['mask'], out[0]['mask'])


def test_predict_at_ratio_zero_reproduces_input():
    model = build(eval_mask_ratio=0.0).eval()
    data = model.data_preprocessor(dict(inputs=astronaut_batch(2)))
    for sample in model(**data, mode='predict'):
        assert sample['mask'].sum() == 0
        torch.testing.assert_close(sample['pred_img'],
                                   sample['gt_img'],
                                   atol=1e-3,
                                   rtol=0)


def test_tensor_mode():
    model = build()
    data = model.data_preprocessor(dict(inputs=astronaut_batch(2)))
    pred, mask = model(**data, mode='tensor')
    assert pred.shape == (2, 64, 48) and mask.shape == (2, 64)
    assert mask.sum(1).tolist() == [48, 48]  # mask_ratio 0.75
    with pytest.raises(ValueError, match='mode'):
        model(**data, mode='bogus')


class CountingProjector(IdentityProjector):
    """Identity projector with a (frozen) parameter and a dropout, to check
    that freezing holds."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(1))
        self.drop = torch.nn.Dropout(0.5)
        self.freeze()

    def _encode(self, x):
        return self.drop(x * self.gain)


def test_projector_frozen_and_in_eval_after_train():
    # a class as ``type`` builds without registering (no registry pollution)
    model = build(projector=dict(type=CountingProjector))
    model.train()
    assert model.training and model.backbone.training
    assert not model.projector.training
    assert not model.projector.drop.training
    assert not any(p.requires_grad for p in model.projector.parameters())
    data = model.data_preprocessor(dict(inputs=astronaut_batch(2)), True)
    model(**data, mode='loss')['loss'].backward()
    assert model.projector.gain.grad is None
    assert model.backbone.cls_token.grad is not None


def test_no_weight_decay_group_is_not_empty():
    model = build()
    constructor = DefaultOptimWrapperConstructor(
        dict(type='OptimWrapper',
             optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)),
        paramwise_cfg=dict(
            custom_keys={
                k: dict(decay_mult=0.0)
                for k in ('pos_embed', 'mask_token', 'cls_token', 'norm',
                          'bias')
            }))
    wrapper = constructor(model)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    no_decay = [
        g for g in wrapper.optimizer.param_groups
        if g['weight_decay'] == 0 and any(
            id(p) in trainable for p in g['params'])
    ]
    decay = [
        g for g in wrapper.optimizer.param_groups if g['weight_decay'] > 0
    ]
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for g in no_decay for p in g['params']}
    assert {
        'backbone.cls_token', 'neck.mask_token', 'backbone.norm.weight',
        'neck.decoder_pred.bias'
    } <= no_decay_names
    assert all(names[id(p)].endswith('weight') and 'norm' not in names[id(p)]
               for g in decay for p in g['params'])


@pytest.mark.parametrize(
    'override,message',
    [(dict(backbone_in_channels=4), 'projector.latent_channels'),
     (dict(neck_patch_size=2), 'neck.patch_size'),
     (dict(neck_embed_dims=48), 'neck.embed_dims'),
     (dict(neck_num_patches=(4, 16)), 'neck.num_patches')])
def test_build_time_consistency_errors(override, message):
    cfg = tiny_cfg()
    for key, value in override.items():
        part, field = key.split('_', 1)
        cfg[part][field] = value
    with pytest.raises(ValueError, match=message):
        MODELS.build(cfg)


def test_image_size_mismatch_error():
    model = build()
    with pytest.raises(ValueError, match='backbone.latent_size'):
        model(torch.zeros(1, 3, 64, 64), mode='loss')
