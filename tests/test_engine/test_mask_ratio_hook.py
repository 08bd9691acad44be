"""MaskRatioSchedulerHook inside a real mmengine Runner (toy model)."""
import json
import os.path as osp

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from lmd_toolkit.engine.hooks import MaskRatioSchedulerHook
from lmd_toolkit.engine.mask_schedulers import CosineMaskRatio
from lmd_toolkit.registry import MASK_SCHEDULERS
from lmd_toolkit.utils import register_all_modules

register_all_modules()


class RatioRecorder(BaseModel):
    """Records the mask ratio it sees at every training step."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.mask_ratio = 0.0
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            self.seen.append(self.mask_ratio)
        return dict(loss=self.linear(inputs).pow(2).mean())


def make_runner(tmp_path, hook, model=None, **loop):
    train_cfg = loop or dict(by_epoch=False, max_iters=12)
    return Runner(
        model=model or RatioRecorder(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=[dict(inputs=torch.randn(2)) for _ in range(8)],
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=train_cfg,
        custom_hooks=[hook],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        default_scope='lmd_toolkit')


def logged_ratios(runner):
    path = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    with open(path) as f:
        return [json.loads(line)['mask_ratio'] for line in f]


def test_iteration_loop_sets_and_logs(tmp_path):
    runner = make_runner(
        tmp_path, dict(type='MaskRatioSchedulerHook',
                       scheduler=dict(type='UniformMaskRatio')))
    runner.train()
    expected = [0.15 + 0.6 * t / 11 for t in range(12)]
    assert runner.model.seen == pytest.approx(expected)
    assert logged_ratios(runner) == pytest.approx(expected)


def test_epoch_loop_uses_global_iteration(tmp_path):
    # 3 epochs x 4 iterations: the curve spans all 12 iterations.
    runner = make_runner(
        tmp_path,
        dict(type='MaskRatioSchedulerHook',
             scheduler=dict(type='CosineMaskRatio')),
        by_epoch=True,
        max_epochs=3)
    runner.train()
    sched = CosineMaskRatio()
    assert runner.model.seen == pytest.approx(
        [sched.ratio(t, 12) for t in range(12)])


def test_dotted_attribute(tmp_path):
    model = RatioRecorder()
    model.inner = nn.Module()
    model.inner.ratio = 0.0
    runner = make_runner(
        tmp_path,
        dict(type='MaskRatioSchedulerHook',
             scheduler=dict(type='FixedMaskRatio', ratio=0.6),
             attr_name='inner.ratio'),
        model=model)
    runner.train()
    assert model.inner.ratio == 0.6
    assert model.seen == [0.0] * 12  # mask_ratio itself untouched


def test_missing_attribute_is_a_clear_error(tmp_path):
    runner = make_runner(
        tmp_path, dict(type='MaskRatioSchedulerHook', attr_name='nope'))
    with pytest.raises(AttributeError,
                       match="RatioRecorder has no attribute 'nope'"):
        runner.train()


def test_unknown_scheduler_lists_registered():
    with pytest.raises(KeyError) as err:
        MaskRatioSchedulerHook(scheduler=dict(type='Cosin'))
    message = str(err.value)
    assert "type='Cosin'" in message
    for name in MASK_SCHEDULERS.module_dict:
        assert name in message
    assert 'custom_imports' in message
