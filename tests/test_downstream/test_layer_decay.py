"""mmpretrain's LearningRateDecayOptimWrapperConstructor sees our layer ids."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from lmd_toolkit.registry import MODELS

from helpers import classifier_cfg  # noqa: I100

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_per_layer_lr_decays_as_0_65_power():
    schedule = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/schedules/adamw_lrd_finetune.py'))
    model = MODELS.build(classifier_cfg(dict(type='IdentityProjector')))
    wrapper = build_optim_wrapper(model, schedule.optim_wrapper)
    base = schedule.optim_wrapper.optimizer.lr
    groups = {g['param_name']: g for g in wrapper.optimizer.param_groups}
    depth = model.backbone.num_layers  # 3
    assert groups['head.fc.weight']['lr'] == pytest.approx(base)
    assert groups['backbone.fc_norm.weight']['lr'] == pytest.approx(base)
    assert groups['backbone.encoder.norm.weight']['lr'] == pytest.approx(base)
    for i in range(depth):
        name = f'backbone.encoder.blocks.{i}.attn.qkv.weight'
        assert groups[name]['lr'] == pytest.approx(base * 0.65**(depth - i))
    for name in ('backbone.encoder.patch_embed.proj.weight',
                 'backbone.encoder.cls_token'):
        assert groups[name]['lr'] == pytest.approx(base * 0.65**(depth + 1))
    # Frozen tensors are not optimised; no weight decay on norms, biases,
    # the class token.
    assert 'backbone.encoder.pos_embed' not in groups
    assert groups['backbone.encoder.cls_token']['weight_decay'] == 0
    assert groups['backbone.encoder.blocks.0.norm1.weight'][
        'weight_decay'] == 0
    assert groups['backbone.encoder.blocks.0.attn.qkv.bias'][
        'weight_decay'] == 0
    assert groups['backbone.encoder.blocks.0.attn.qkv.weight'][
        'weight_decay'] == pytest.approx(0.05)
