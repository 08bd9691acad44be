"""A grid of unconditional samples, written while training (paper Fig. 6)."""
import os.path as osp
from typing import List

import numpy as np
import torch

from lmd_toolkit.engine.mask_schedulers import build_mask_scheduler
from lmd_toolkit.models.progressive_unmasking import masked_counts, unmask
from lmd_toolkit.registry import HOOKS
from .reconstruction_hook import PeriodicGridHook, make_grid, save_png


@HOOKS.register_module()
class SampleGridHook(PeriodicGridHook):
    """Every ``interval`` iterations, sample ``rows x cols`` images from a
    fully masked latent with the progressive sampler (the core of
    ``lmd_toolkit.apis.sample``, ``models/progressive_unmasking.py``) and
    save them as one PNG, like the 5 x 5
    samples of the paper's Fig. 6 (https://arxiv.org/abs/2312.07971).

    The seed is fixed, so grids of successive iterations start from the
    same reveal orders and show how samples change across training. Files:
    ``<work_dir>/<out_dir>/iter_<N>.png``; after training also
    ``progress.png``, the first ``cols`` samples of every saved grid, one
    row per saved iteration. Runs on rank 0 only.

    Args:
        interval (int): Iterations between grids. Defaults to 1000.
        rows (int): Grid rows. Defaults to 5.
        cols (int): Grid columns. Defaults to 5.
        steps (int): Sampler steps (model calls). Defaults to 8.
        seed (int): Seed of the reveal orders. Defaults to 0.
        out_dir (str): Folder under the work dir. Defaults to 'samples'.
        scale (int): Nearest-neighbour enlargement. Defaults to 1.
    """

    tag = 'samples'

    def __init__(self,
                 interval: int = 1000,
                 rows: int = 5,
                 cols: int = 5,
                 steps: int = 8,
                 seed: int = 0,
                 out_dir: str = 'samples',
                 scale: int = 1) -> None:
        if min(interval, rows, cols, steps, scale) <= 0:
            raise ValueError(
                'SampleGridHook: interval, rows, cols, steps and scale must '
                f'be positive, got interval={interval}, rows={rows}, '
                f'cols={cols}, steps={steps}, scale={scale}.')
        self.interval = interval
        self.rows = rows
        self.cols = cols
        self.steps = steps
        self.seed = seed
        self.out_dir = out_dir
        self.scale = scale
        self._progress: List[torch.Tensor] = []  # first row of every grid

    def make_image(self, runner, model: torch.nn.Module) -> np.ndarray:
        L = model.backbone.num_patches  # fully masked start: L removed
        counts = masked_counts(build_mask_scheduler(None, model), self.steps,
                               L, L)
        with torch.no_grad():
            out = unmask(model, None, self.rows * self.cols, None, counts,
                         seed=self.seed, decode_intermediates=False)
        images = out['images'].float()  # (rows*cols, 3, H, W) in [0, 255]
        self._progress.append(images[:self.cols])
        return make_grid([[images[r * self.cols + c]
                           for c in range(self.cols)]
                          for r in range(self.rows)], scale=self.scale)

    def after_train(self, runner) -> None:
        super().after_train(runner)  # the last grid
        if runner.rank == 0 and self._progress:
            grid = make_grid([list(row) for row in self._progress],
                             scale=self.scale)
            save_png(osp.join(runner.work_dir, self.out_dir, 'progress.png'),
                     grid)
