"""SampleGridHook in a real short training run: a rows x cols grid of
samples every `interval` iterations, and the progress strip at the end."""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

from lmd_toolkit.engine.hooks import SampleGridHook
from lmd_toolkit.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'tests', 'data', 'tiny_lmd_photos.py')


def test_sample_grids_across_training(tmp_path):
    register_all_modules()
    cfg = Config.fromfile(TINY)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 5
    cfg.custom_hooks = [
        dict(type='SampleGridHook', interval=2, rows=2, cols=3, steps=2)
    ]
    Runner.from_cfg(cfg).train()
    out = tmp_path / 'samples'
    # iterations 2 and 4 by interval, 5 at the end of training
    grids = [np.asarray(Image.open(out / f'iter_{i}.png')) for i in (2, 4, 5)]
    tile = 64 + 2  # 64 px samples + padding
    for grid in grids:
        assert grid.shape == (2 * tile + 2, 3 * tile + 2, 3)
    assert not np.array_equal(grids[0], grids[1])  # the model trained
    progress = np.asarray(Image.open(out / 'progress.png'))
    assert progress.shape == (3 * tile + 2, 3 * tile + 2, 3)
    # row k of the progress strip is the first row of the k-th grid
    for k, grid in enumerate(grids):
        np.testing.assert_array_equal(
            progress[2 + k * tile:(k + 1) * tile],
            grid[2:tile])


def test_invalid_arguments():
    with pytest.raises(ValueError, match='rows=0'):
        SampleGridHook(rows=0)
