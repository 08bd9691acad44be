"""Saves (input, masked input, reconstruction) grids during training."""
import os
import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.hooks import Hook
from PIL import Image

from lmd_toolkit.registry import HOOKS
from lmd_toolkit.utils.fileio import atomic_write
from ..strategies import is_fsdp, unsharded_model

DATA_BATCH = Optional[Union[dict, tuple, list]]


def save_png(path: str, pixels: np.ndarray) -> None:
    """Write a uint8 ``(H, W, 3)`` array as PNG atomically (a crash leaves
    the old file or the new one, never half of it)."""
    with atomic_write(path, 'wb') as f:
        Image.fromarray(pixels).save(f, format='PNG')


def make_grid(rows: Sequence[Sequence[torch.Tensor]],
              padding: int = 2,
              scale: int = 1) -> np.ndarray:
    """Tile float images ``(3, H, W)`` in [0, 255], each enlarged
    ``scale`` times (nearest), into one uint8 RGB array
    ``(rows*(sH+p)+p, cols*(sW+p)+p, 3)`` with white padding."""
    n_rows, n_cols = len(rows), len(rows[0])
    _, h, w = rows[0][0].shape
    h, w = h * scale, w * scale
    grid = np.full((n_rows * (h + padding) + padding,
                    n_cols * (w + padding) + padding, 3),
                   255,
                   dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y = padding + i * (h + padding)
            x = padding + j * (w + padding)
            pixels = img.detach().float().clamp(0, 255).round().byte()
            if scale > 1:
                pixels = pixels.repeat_interleave(scale, 1)
                pixels = pixels.repeat_interleave(scale, 2)
            grid[y:y + h, x:x + w] = pixels.permute(1, 2, 0).cpu().numpy()
    return grid


def reconstruction_grid(model,
                        inputs: torch.Tensor,
                        mask_ratios: Sequence[float],
                        seed: int = 0,
                        scale: int = 1) -> np.ndarray:
    """One row per image: the input, then (masked input, reconstruction)
    for every ratio in ``mask_ratios`` (the paper's Fig. 6 layout).

    Args:
        model: A ``LatentMaskingDiffusion`` (unwrapped).
        inputs (Tensor): Preprocessed images ``(B, 3, H, W)`` in [-1, 1].
        mask_ratios (Sequence[float]): Ratios of the column pairs.
        seed (int): Seed of the masks (the same for every call).
        scale (int): Nearest-neighbour enlargement of every image.

    Returns:
        np.ndarray: uint8 RGB grid ``(H', W', 3)``.
    """
    columns = []
    for ratio in mask_ratios:
        samples = model.predict(inputs, mask_ratio=ratio, seed=seed)
        columns.append(samples)
    rows = []
    for i in range(inputs.shape[0]):
        row = [columns[0][i]['gt_img']]
        for samples in columns:
            row += [samples[i]['masked_img'], samples[i]['pred_img']]
        rows.append(row)
    return make_grid(rows, scale=scale)


class PeriodicGridHook(Hook):
    """Base of the grid hooks: every ``interval`` training iterations and
    after training, rank 0 builds :meth:`make_image` with the model in eval
    mode and writes it to ``<work_dir>/<out_dir>/iter_<n>.png`` and to the
    runner's visualizer (tag ``self.tag``). Subclasses set ``interval``,
    ``out_dir`` and ``tag``."""

    priority = 'LOW'
    tag = 'grid'
    interval: int
    out_dir: str

    def make_image(self, runner, model: torch.nn.Module) -> np.ndarray:
        """The uint8 RGB grid ``(H, W, 3)`` of this call."""
        raise NotImplementedError

    def _save(self, runner, step: int) -> None:
        # Under FSDP every rank takes part in gathering the weights.
        if not is_fsdp(runner.model) and runner.rank != 0:
            return
        model = unsharded_model(runner, self.__dict__.setdefault(
            '_unsharded', {}))
        if model is None:  # not rank 0
            return
        was_training = model.training
        model.eval()
        try:
            grid = self.make_image(runner, model)
        finally:
            model.train(was_training)
        out_dir = osp.join(runner.work_dir, self.out_dir)
        os.makedirs(out_dir, exist_ok=True)
        save_png(osp.join(out_dir, f'iter_{step}.png'), grid)
        runner.visualizer.add_image(self.tag, grid, step=step)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            self._save(runner, runner.iter + 1)  # iterations done

    def after_train(self, runner) -> None:
        if runner.iter % self.interval != 0:
            self._save(runner, runner.iter)


@HOOKS.register_module()
class ReconstructionVisualizationHook(PeriodicGridHook):
    """Every ``interval`` training iterations (and after training), save a
    grid of (input, masked input, reconstruction) at several mask ratios for
    a fixed batch of validation images.

    The grid is written as ``<work_dir>/reconstructions/iter_<n>.png`` and
    sent to the runner's visualizer (``add_image``), i.e. to every
    configured backend (local ``vis_data/vis_image``, TensorBoard, ...).
    Images and masks are the same at every call, so the grids show training
    progress. Paper Fig. 6, https://arxiv.org/abs/2312.07971.

    Args:
        interval (int): Iterations between grids. Defaults to 500.
        num_images (int): Images (rows) per grid. Defaults to 4.
        mask_ratios (Sequence[float]): Ratio of each (masked,
            reconstruction) column pair. Defaults to (0.25, 0.5, 0.75).
        seed (int): Seed of the masks. Defaults to 0.
        out_dir (str): Folder under the work dir. Defaults to
            'reconstructions'.
        scale (int): Nearest-neighbour enlargement of small images in the
            grid. Defaults to 2.
    """

    tag = 'reconstruction'

    def __init__(self,
                 interval: int = 500,
                 num_images: int = 4,
                 mask_ratios: Sequence[float] = (0.25, 0.5, 0.75),
                 seed: int = 0,
                 out_dir: str = 'reconstructions',
                 scale: int = 2) -> None:
        if interval <= 0 or num_images <= 0 or not mask_ratios:
            raise ValueError(
                'ReconstructionVisualizationHook: interval and num_images '
                'must be positive and mask_ratios non-empty, got '
                f'interval={interval}, num_images={num_images}, '
                f'mask_ratios={mask_ratios}')
        self.interval = interval
        self.num_images = num_images
        self.mask_ratios = tuple(mask_ratios)
        self.seed = seed
        self.out_dir = out_dir
        self.scale = scale
        self._batch = None

    def _fixed_batch(self, runner) -> dict:
        """``num_images`` images spread evenly over the validation set (or
        the training set when there is none), read once."""
        if self._batch is None:
            loader = runner.val_dataloader if runner.val_loop is not None \
                else runner.train_dataloader
            dataset = loader.dataset
            num = min(self.num_images, len(dataset))
            indices = np.linspace(0, len(dataset) - 1, num).round()
            items = [dataset[int(i)] for i in indices]
            self._batch = dict(
                inputs=torch.stack([item['inputs'] for item in items]))
        return self._batch

    def make_image(self, runner, model: torch.nn.Module) -> np.ndarray:
        data = model.data_preprocessor(self._fixed_batch(runner), False)
        return reconstruction_grid(model, data['inputs'], self.mask_ratios,
                                   self.seed, self.scale)
