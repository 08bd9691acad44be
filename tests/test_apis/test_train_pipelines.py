"""Budgets, checkpoint look-up and stage-1 reuse of lmd_toolkit.apis.pipelines
(the pieces tools/demo.py and tools/reproduce.py are built from)."""
import os
import os.path as osp

import pytest
from mmengine.config import Config

from lmd_toolkit.apis.pipelines import (ensure_stage1, last_checkpoint,
                                        set_budget)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'lmd_vit-tiny_pixel_photos_cs.py')
STAGE1 = osp.join(ROOT, 'configs', 'projectors', 'klvae_tiny-f8_photos.py')


def test_set_budget_rewrites_every_iteration_count():
    cfg = set_budget(Config.fromfile(DEMO), 40)
    assert cfg.train_cfg.max_iters == 40
    assert cfg.train_cfg.val_interval == 40
    warmup, cosine = cfg.param_scheduler
    assert (warmup['type'], warmup['end']) == ('LinearLR', 2)  # 5 % of 40
    assert (cosine['begin'], cosine['end'], cosine['T_max']) == (2, 40, 38)
    hooks = cfg.default_hooks
    assert hooks.checkpoint.interval == 40
    assert hooks.visualization.interval == 40
    assert hooks.logger.interval == 4  # about 10 lines
    # the mask-ratio schedule is untouched: a function of (t, max_iters)
    assert hooks.mask_ratio.scheduler.type == 'CosineMaskRatio'


def test_set_budget_errors():
    cfg = Config.fromfile(DEMO)
    with pytest.raises(ValueError, match='max_iters must be >= 2, got 1'):
        set_budget(cfg, 1)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3)
    with pytest.raises(ValueError, match="train_cfg.type is 'EpochBased"):
        set_budget(cfg, 10)


def test_last_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='saved no checkpoint'):
        last_checkpoint(str(tmp_path))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_3.pth'))
    with pytest.raises(FileNotFoundError, match='iter_3.pth, which does not'):
        last_checkpoint(str(tmp_path))
    (tmp_path / 'iter_3.pth').write_bytes(b'x')
    assert last_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_3.pth')


def test_ensure_stage1_reuses_an_existing_checkpoint(tmp_path):
    """With iter_<budget>.pth present nothing is trained: the file is
    returned untouched and no run folder appears."""
    ckpt = tmp_path / 'iter_5.pth'
    ckpt.write_bytes(b'stage-1 weights')
    before = sorted(os.listdir(tmp_path))
    assert ensure_stage1(STAGE1, str(tmp_path), max_iters=5) == str(ckpt)
    assert ckpt.read_bytes() == b'stage-1 weights'
    assert sorted(os.listdir(tmp_path)) == before
