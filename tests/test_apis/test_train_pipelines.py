"""Budgets, checkpoint look-up and stage-1 reuse of lmd_toolkit.apis.pipelines
(the pieces tools/demo.py and tools/reproduce.py are built from)."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from lmd_toolkit.apis.pipelines import (ensure_stage1, last_checkpoint,
                                        recipe_changes, set_budget)
from lmd_toolkit.utils.launch import load_config

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


def save_recorded(path, cfg, weights=None):
    """A checkpoint as mmengine saves it: the run's config in meta['cfg']."""
    torch.save(dict(meta=dict(cfg=cfg.pretty_text),
                    state_dict=weights or {}), str(path))


def stage1_cfg(work_dir, max_iters):
    return set_budget(load_config(STAGE1, work_dir=str(work_dir)), max_iters)


def test_ensure_stage1_reuses_an_existing_checkpoint(tmp_path):
    """With iter_<budget>.pth of the same recipe present nothing is trained:
    the file is returned untouched and no run folder appears."""
    ckpt = tmp_path / 'iter_5.pth'
    save_recorded(ckpt, stage1_cfg(tmp_path, 5), {'w': torch.ones(2)})
    data = ckpt.read_bytes()
    before = sorted(os.listdir(tmp_path))
    assert ensure_stage1(STAGE1, str(tmp_path), max_iters=5) == str(ckpt)
    assert ckpt.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == before


def test_recipe_changes_names_the_keys_that_differ(tmp_path):
    cfg = stage1_cfg(tmp_path, 5)
    ckpt = tmp_path / 'iter_5.pth'
    save_recorded(ckpt, cfg)
    assert recipe_changes(str(ckpt), cfg) == []
    other = stage1_cfg(tmp_path, 5)
    other.model.projector.preset = 'micro-f4'
    other.train_dataloader.dataset.pipeline = [dict(type='PackInputs')]
    assert recipe_changes(str(ckpt), other) == ['model', 'train_dataloader']
    # A bare state dict recorded nothing: nothing to compare with.
    torch.save({'w': torch.ones(1)}, str(ckpt))
    assert recipe_changes(str(ckpt), other) == []


def test_ensure_stage1_retrains_a_checkpoint_of_another_recipe(tmp_path):
    """A stage-1 checkpoint trained with another recipe (here: another
    learning rate) is kept, unchanged, as .stale (.stale1 when an earlier
    .stale exists, which stays too), and stage 1 trains anew."""
    old_cfg = stage1_cfg(tmp_path, 2)
    old_cfg.optim_wrapper.generator.optimizer.lr = 0.5
    ckpt = tmp_path / 'iter_2.pth'
    save_recorded(ckpt, old_cfg, {'w': torch.ones(3)})
    data = ckpt.read_bytes()
    (tmp_path / 'iter_2.pth.stale').write_bytes(b'an older stale checkpoint')
    assert ensure_stage1(STAGE1, str(tmp_path), max_iters=2) == str(ckpt)
    assert (tmp_path / 'iter_2.pth.stale1').read_bytes() == data
    assert (tmp_path / 'iter_2.pth.stale').read_bytes() == (
        b'an older stale checkpoint')
    assert recipe_changes(str(ckpt), stage1_cfg(tmp_path, 2)) == []
