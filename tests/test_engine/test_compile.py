"""Runner(compile=...) with the LMD model: no recompile per token count.

The ``aot_eager`` backend stands in for inductor (whose C++ compilation takes
minutes on this CPU): it runs dynamo and AOT autograd like inductor does, and
AOT autograd's float "tensorification" is what made every new mask ratio
recompile, so the (re)compilations counted here are inductor's.
"""
import tempfile

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseDataPreprocessor
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from torch._dynamo.utils import counters

from lmd_toolkit.utils import register_all_modules

register_all_modules()

TINY_CONFIG = 'tests/data/tiny_lmd_photos.py'
NUM_ITERS = 6


def graphs_compiled() -> int:
    return counters['stats']['unique_graphs']


class Recorder(Hook):
    """Per iteration: loss, visible-token count, graphs compiled so far."""

    def __init__(self) -> None:
        self.rows = []

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        model = runner.model
        visible = int(model.backbone.num_patches * (1 - model.mask_ratio))
        self.rows.append(
            (float(outputs['loss'].detach()), visible, graphs_compiled()))


def train(compile_cfg) -> list:
    torch._dynamo.reset()
    counters.clear()
    with tempfile.TemporaryDirectory() as work_dir:
        cfg = Config.fromfile(TINY_CONFIG)
        cfg.work_dir = work_dir
        cfg.randomness = dict(seed=0)
        if compile_cfg is not None:
            cfg.compile = dict(compile_cfg, backend='aot_eager')
        cfg.train_cfg = dict(type='IterBasedTrainLoop',
                             max_iters=NUM_ITERS,
                             val_interval=10**6)
        # 0.15 -> 0.75 over 6 iterations: 6 different visible-token counts.
        cfg.default_hooks.mask_ratio.scheduler = dict(type='CosineMaskRatio',
                                                      min_ratio=0.15,
                                                      max_ratio=0.75)
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
        cfg.default_hooks.pop('visualization')
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                            interval=10**6)
        cfg.log_level = 'WARNING'
        runner = Runner.from_cfg(cfg)
        recorder = Recorder()
        runner.register_hook(recorder, priority='LOWEST')
        runner.train()
    torch._dynamo.reset()
    return recorder.rows


@pytest.fixture(scope='module')
def eager_rows():
    return train(None)


def test_plumbing_runs_eagerly():
    assert OptimWrapper.update_params._lmd_eager
    assert BaseDataPreprocessor.cast_data._lmd_eager


def test_compile_true_does_not_recompile_per_token_count(eager_rows):
    rows = train(dict())  # compile=True
    visible = [v for _, v, _ in rows]
    graphs = [g for _, _, g in rows]
    assert len(set(visible)) >= 5
    first = graphs[0]
    assert first > 0  # the model forward was compiled
    # Only the second iteration recompiles (each graph once: the ratio, a
    # float argument, turns dynamic); later token counts reuse the graphs.
    assert graphs[1] - first <= first
    assert graphs[-1] == graphs[1]
    # Same masks, same numbers as the eager run.
    torch.testing.assert_close([loss for loss, _, _ in rows],
                               [loss for loss, _, _ in eager_rows],
                               rtol=1e-5,
                               atol=1e-6)
