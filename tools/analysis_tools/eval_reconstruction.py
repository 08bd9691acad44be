"""Reconstruction PSNR of a checkpoint against the mean-latent baseline.

    python tools/analysis_tools/eval_reconstruction.py CONFIG CHECKPOINT \
        [--mask-ratios 0.25 0.5 0.75] [--seed 0]

On the config's validation set, at each mask ratio, with the same seeded
masks for both: the model (visible patches kept, masked ones predicted) and
the baseline that fills masked patches with the mean latent of the image's
visible patches. Prints a Markdown table and writes it as JSON beside the
checkpoint (``<checkpoint>.recon_eval.json``, atomically: a failed run leaves
an earlier file untouched).

The checkpoint is read with the safe loader and must fit the config's model
exactly (``lmd_toolkit.apis.inference.load_checkpoint_strict``): one of
another architecture stops with a ``StateDictMismatchError`` naming the
keys, before any image is evaluated. ``--batch-size`` and the mask ratios are
checked by the argument parser, before anything is built.
"""
import argparse
import json
import math
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import default_collate  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

from lmd_toolkit.apis.inference import load_checkpoint_strict  # noqa: E402
from lmd_toolkit.evaluation import mean_latent_baseline  # noqa: E402
from lmd_toolkit.registry import DATASETS, MODELS  # noqa: E402
from lmd_toolkit.utils import register_all_modules  # noqa: E402
from lmd_toolkit.utils.fileio import UnreadableFileError  # noqa: E402
from lmd_toolkit.utils.fileio import atomic_write  # noqa: E402
from lmd_toolkit.utils.state_dict import StateDictMismatchError  # noqa: E402,E501
from lmd_toolkit.utils.validate import positive_int  # noqa: E402


def psnr(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR of images in [-1, 1], measured on [0, 255]."""
    pred = ((pred.clamp(-1, 1) + 1) * 127.5).double()
    gt = ((gt.clamp(-1, 1) + 1) * 127.5).double()
    mse = ((pred - gt)**2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse)


@torch.no_grad()
def evaluate(model, loader, mask_ratios, seed):
    sums = {r: dict(model=0.0, baseline=0.0) for r in mask_ratios}
    count = 0
    for batch in loader:
        inputs = model.data_preprocessor(batch, False)['inputs']
        for ratio in mask_ratios:
            gen = torch.Generator().manual_seed(seed + count)
            out = model.reconstruct(inputs, ratio, gen)
            base = mean_latent_baseline(out['latent'], out['mask'],
                                        model.backbone.patch_size)
            base_img = model.projector.decode(base)
            sums[ratio]['model'] += psnr(out['pred_img'], inputs).sum().item()
            sums[ratio]['baseline'] += psnr(base_img, inputs).sum().item()
        count += inputs.shape[0]
    return {
        r: {k: v / count
            for k, v in s.items()}
        for r, s in sums.items()
    }, count


def mask_ratio(text: str) -> float:
    """``argparse`` type of a mask ratio: a float in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected a mask ratio in [0, 1), got {text!r}') from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(
            f'expected a mask ratio in [0, 1), got {value}')
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--mask-ratios', type=mask_ratio, nargs='+',
        default=[0.25, 0.5, 0.75])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--batch-size', type=positive_int, default=16)
    return parser.parse_args()


def main() -> None:
    args = parse_args()

    register_all_modules()
    cfg = Config.fromfile(args.config)
    DefaultScope.get_instance('eval_reconstruction', scope_name='lmd_toolkit')
    model = MODELS.build(cfg.model)
    load_checkpoint_strict(model, args.checkpoint)
    model.eval()
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, collate_fn=default_collate)
    results, count = evaluate(model, loader, args.mask_ratios, args.seed)

    print(f'{count} validation images, PSNR (dB) of the reconstruction:')
    print('| mask ratio | model | mean-latent baseline | model - baseline |')
    print('|---|---|---|---|')
    for ratio, r in results.items():
        gain = r['model'] - r['baseline']
        print(f"| {ratio:.2f} | {r['model']:.2f} | {r['baseline']:.2f} | "
              f'{gain:+.2f} |')
        assert math.isfinite(gain)
    out = args.checkpoint + '.recon_eval.json'
    with atomic_write(out) as f:
        json.dump(dict(num_images=count, psnr={str(k): v
                                               for k, v in results.items()}),
                  f, indent=2)
    print(f'written to {out}')


if __name__ == '__main__':
    try:
        main()
    except (UnreadableFileError, StateDictMismatchError) as error:
        sys.exit(f'error: {error}')  # one message, no traceback
