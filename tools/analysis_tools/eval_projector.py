"""Reconstruction PSNR / SSIM of a trained projector against bicubic f x
down-up sampling on the same held-out crops.

    python tools/analysis_tools/eval_projector.py CONFIG CHECKPOINT \
        [--split val|test] [--num-images 8]

``CONFIG`` is a stage-1 config (``configs/projectors/*.py``); its
``model.projector`` is built with ``checkpoint=CHECKPOINT`` (the loader that
LMD configs use, so this also checks that stage 2 can read the file). The
projector reconstructs ``decode(encode(x))``; the baseline shrinks each crop
by the projector's factor ``f`` (bicubic, antialiased) and enlarges it back
(bicubic): both keep about ``H*W/f^2`` numbers per channel. Prints a
Markdown table (mean and median of the per-crop PSNR, SSIM) and on how
many crops the projector beats the baseline; writes
``<CHECKPOINT>.projector_eval.json`` (with every crop's PSNR) and a PNG grid
(rows: ground truth, bicubic, projector) beside the checkpoint, both
atomically (a failed run leaves earlier files untouched). ``--batch-size``
and ``--num-images`` must be positive (checked by the argument parser before
anything is built); a truncated checkpoint stops with one
``UnreadableFileError`` naming the file.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import default_collate  # noqa: E402
from PIL import Image  # noqa: E402

from lmd_toolkit.evaluation import PSNR, SSIM  # noqa: E402
from lmd_toolkit.registry import DATASETS, MODELS  # noqa: E402
from lmd_toolkit.utils import register_all_modules  # noqa: E402
from lmd_toolkit.utils.fileio import UnreadableFileError  # noqa: E402
from lmd_toolkit.utils.fileio import atomic_write  # noqa: E402
from lmd_toolkit.utils.validate import positive_int  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='stage-1 config file')
    parser.add_argument('checkpoint', help='stage-1 checkpoint (iter_N.pth)')
    parser.add_argument('--split', choices=['val', 'test'], default='val',
                        help='dataloader of the config to evaluate on')
    parser.add_argument('--batch-size', type=positive_int, default=16)
    parser.add_argument('--num-images', type=positive_int, default=8,
                        help='columns of the PNG grid')
    return parser.parse_args()


def bicubic_down_up(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Images ``(B, 3, H, W)`` shrunk by ``factor`` and enlarged back."""
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(h // factor, w // factor), mode='bicubic',
                          align_corners=False, antialias=True)
    return F.interpolate(small, size=(h, w), mode='bicubic',
                         align_corners=False)


def to_255(x: torch.Tensor) -> torch.Tensor:
    return ((x.float() + 1) * 127.5).clamp(0, 255)


def save_grid(rows: list, path: str) -> None:
    """Rows of ``(N, 3, H, W)`` images in [0, 255] -> one PNG."""
    grid = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)
    img = grid.round().byte().permute(1, 2, 0).numpy()
    with atomic_write(path, 'wb') as f:
        Image.fromarray(np.ascontiguousarray(img)).save(f, format='PNG')


@torch.no_grad()
def main() -> None:
    args = parse_args()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'Checkpoint not found: {args.checkpoint}')
    loader_cfg = cfg.get(f'{args.split}_dataloader')
    if loader_cfg is None:
        raise KeyError(f'{args.config} has no {args.split}_dataloader; pass '
                       '--split with one it defines.')
    projector = MODELS.build(
        dict(cfg.model.projector, checkpoint=args.checkpoint))
    projector.init_weights()  # loads the checkpoint, freezes
    factor = projector.downsample_factor
    baseline = f'bicubic x{factor}'  # the row name of the baseline
    dataset = DATASETS.build(loader_cfg.dataset)
    metrics = {
        name: [PSNR(), SSIM()]
        for name in ('projector', baseline)
    }
    shown = []
    for start in range(0, len(dataset), args.batch_size):
        batch = default_collate([
            dataset[i]
            for i in range(start, min(start + args.batch_size, len(dataset)))
        ])
        x = batch['inputs'].float() / 127.5 - 1  # (B, 3, H, W) in [-1, 1]
        preds = {
            'projector': projector.decode(projector.encode(x)),
            baseline: bicubic_down_up(x, factor),
        }
        for name, pred in preds.items():
            samples = [
                dict(gt_img=to_255(g), pred_img=to_255(p))
                for g, p in zip(x, pred)
            ]
            for metric in metrics[name]:
                metric.process(None, samples)
        if not shown:
            n = args.num_images
            shown = [to_255(x[:n])] + [to_255(p[:n]) for p in
                                       reversed(list(preds.values()))]
    # Per-crop PSNRs (the PSNR metric keeps one value per image).
    per_crop = {name: list(ms[0].results) for name, ms in metrics.items()}
    results = {
        name: dict(
            {k: v
             for m in ms for k, v in m.compute_metrics(m.results).items()},
            median_PSNR=float(np.median(per_crop[name])))
        for name, ms in metrics.items()
    }
    wins = sum(p > b for p, b in zip(per_crop['projector'],
                                     per_crop[baseline]))
    print(f'{len(dataset)} {args.split} crops of '
          f'{tuple(x.shape[-2:])} px, projector f={factor}')
    print('| reconstruction | PSNR (dB) | median PSNR (dB) | SSIM |')
    print('|---|---|---|---|')
    for name, r in results.items():
        print(f"| {name} | {r['PSNR']:.2f} | {r['median_PSNR']:.2f} | "
              f"{r['SSIM']:.4f} |")
    print(f'The projector beats {baseline} on {wins} of {len(dataset)} '
          'crops (per-crop PSNR).')
    stem = args.checkpoint + '.projector_eval'
    with atomic_write(stem + '.json') as f:
        json.dump(dict(config=args.config, checkpoint=args.checkpoint,
                       split=args.split, num_images=len(dataset),
                       results=results, projector_wins=wins,
                       per_crop_PSNR=per_crop), f, indent=2)
    save_grid(shown, stem + '.png')
    print(f'Wrote {stem}.json and {stem}.png (rows: ground truth, '
          'bicubic, projector)')


if __name__ == '__main__':
    try:
        main()
    except UnreadableFileError as error:  # one message, no traceback
        sys.exit(f'error: {error}')
