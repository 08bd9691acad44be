"""Reconstruct, inpaint or progressively sample images with a trained LMD.

    python tools/reconstruct.py CONFIG CKPT INPUTS... --out DIR \
        [--mask-ratio R] [--seed S] [--batch-size N] [--device cpu]
    python tools/reconstruct.py CONFIG CKPT IMG... --out DIR --inpaint MASK.png
    python tools/reconstruct.py CONFIG CKPT [IMG...] --out DIR --sample \
        [--steps K] [--scheduler NAME] [--start-ratio R] [--num-samples N]

INPUTS are image files or folders (searched recursively for common image
extensions). Images are resized and centre-cropped to the model input size
(docs/en/inference.md). Writes one PNG per image, ``NNNN_<name>.png`` (input
| masked | reconstruction; with ``--sample``: input | start | every step's
estimate | final) and ``grid.png`` (the first 64 rows). Existing outputs are
never overwritten without ``--force``; every PNG is written atomically (a
failed run leaves no half-written file). The checkpoint must fit the config's
model exactly (``init_model`` loads it strictly); ``--batch-size``,
``--steps`` and ``--num-samples`` must be positive, checked by the argument
parser before anything is built.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from lmd_toolkit.apis import build_mask_scheduler  # noqa: E402
from lmd_toolkit.apis import init_model, inpaint  # noqa: E402
from lmd_toolkit.apis import reconstruct, sample  # noqa: E402
from lmd_toolkit.datasets.image_io import IMG_EXTENSIONS  # noqa: E402
from lmd_toolkit.datasets.image_io import has_image_extension  # noqa: E402
from lmd_toolkit.engine.hooks.reconstruction_hook import \
    make_grid  # noqa: E402
from lmd_toolkit.engine.hooks.reconstruction_hook import \
    save_png  # noqa: E402
from lmd_toolkit.utils.fileio import UnreadableFileError  # noqa: E402
from lmd_toolkit.utils.state_dict import StateDictMismatchError  # noqa: E402,E501
from lmd_toolkit.utils.validate import positive_int  # noqa: E402

GRID_ROWS = 64


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 1)[1])
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint (.pth) of the model')
    parser.add_argument('inputs', nargs='*', help='image files or folders')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--mask-ratio',
        type=float,
        help='fraction of latent tokens removed (default: the model\'s '
        'eval_mask_ratio; with --sample: the start ratio)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--batch-size', type=positive_int, default=16)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--autocast',
                        choices=['bf16', 'fp16'],
                        help='autocast the ViT')
    parser.add_argument('--force',
                        action='store_true',
                        help='overwrite existing outputs')
    parser.add_argument(
        '--inpaint',
        metavar='MASK.png',
        help='fill the white region of this mask in every input')
    parser.add_argument(
        '--min-coverage',
        type=float,
        default=0.0,
        help='--inpaint: fill a patch when more than this fraction of it '
        'is white (default 0: any overlap)')
    parser.add_argument('--sample',
                        action='store_true',
                        help='progressive unmasking sampler')
    parser.add_argument('--steps', type=positive_int, default=8,
                        help='sampler steps')
    parser.add_argument('--scheduler',
                        help='registered mask scheduler of the sampler '
                        '(default: the one the model trained with)')
    parser.add_argument(
        '--start-ratio',
        type=float,
        help='--sample: start mask ratio (1.0 = fully masked; default: the '
        'schedule\'s first ratio, or 1.0 without inputs)')
    parser.add_argument('--num-samples',
                        type=positive_int,
                        default=4,
                        help='--sample without inputs: number of samples')
    return parser.parse_args()


def collect_images(inputs: List[str]) -> List[str]:
    """Files as given, folders searched recursively (sorted)."""
    files = []
    for path in inputs:
        if osp.isdir(path):
            found = sorted(
                osp.join(root, name) for root, _, names in os.walk(path)
                for name in names if has_image_extension(name))
            if not found:
                raise SystemExit(
                    f'error: no images ({", ".join(IMG_EXTENSIONS)}'
                    f') under folder {path}')
            files += found
        elif osp.isfile(path):
            files.append(path)
        else:
            raise SystemExit(f'error: input not found: {path}')
    return files


def output_names(files: List[str], count: int) -> List[str]:
    """``NNNN_<stem>.png`` per input (``NNNN_sample.png`` without inputs)."""
    if not files:
        return [f'{i:04d}_sample.png' for i in range(count)]
    return [
        f'{i:04d}_{osp.splitext(osp.basename(f))[0]}.png'
        for i, f in enumerate(files)
    ]


def save(path: str, row: List[torch.Tensor]) -> None:
    save_png(path, make_grid([[img.float() for img in row]]))


def main() -> None:
    args = parse_args()
    if args.inpaint and args.sample and not args.inputs:
        raise SystemExit('error: --inpaint needs input images')
    if not args.inputs and not args.sample:
        raise SystemExit('error: give input images or folders (only --sample'
                         ' can run without them)')
    if args.inpaint and not osp.isfile(args.inpaint):
        raise SystemExit(f'error: --inpaint mask not found: {args.inpaint}')
    if args.scheduler is not None:
        try:
            build_mask_scheduler(args.scheduler)
        except (ValueError, TypeError) as e:
            raise SystemExit(f'error: --scheduler: {e}')
    files = collect_images(args.inputs)
    count = len(files) if files else args.num_samples
    names = output_names(files, count) + ['grid.png']
    existing = [n for n in names if osp.exists(osp.join(args.out, n))]
    if existing and not args.force:
        raise SystemExit(
            f'error: {len(existing)} output file(s) already exist in '
            f'{args.out} (e.g. {existing[0]}); pass --force to overwrite or '
            f'choose another --out.')
    os.makedirs(args.out, exist_ok=True)

    model = init_model(args.config, args.checkpoint, device=args.device)
    rows = []
    bar = tqdm(total=count, unit='img')
    for begin in range(0, count, args.batch_size):
        batch = files[begin:begin + args.batch_size]
        if args.inpaint:
            batch_rows = []
            for i, path in enumerate(batch):
                out = inpaint(model,
                              path,
                              args.inpaint,
                              args.min_coverage,
                              steps=args.steps if args.sample else 1,
                              scheduler=args.scheduler,
                              seed=args.seed + begin + i,
                              autocast_dtype=args.autocast)
                batch_rows.append(
                    [out['input'], out['masked'], out['inpainted']])
        elif args.sample:
            start = args.start_ratio if args.start_ratio is not None \
                else args.mask_ratio
            n = min(args.batch_size, count - begin)
            out = sample(model,
                         batch or None,
                         num_samples=n,
                         start_ratio=start if batch else None,
                         steps=args.steps,
                         scheduler=args.scheduler,
                         seed=args.seed,
                         batch_size=args.batch_size,
                         autocast_dtype=args.autocast,
                         first_index=begin)
            batch_rows = []
            for i in range(n):
                row = [] if out['inputs'] is None else [out['inputs'][i]]
                start_img = _masked(out, i, model)
                row += [start_img] + [s['images'][i] for s in out['steps']]
                row += [out['images'][i]]
                batch_rows.append(row)
        else:
            out = reconstruct(model,
                              batch,
                              mask_ratio=args.mask_ratio,
                              seed=args.seed,
                              batch_size=args.batch_size,
                              autocast_dtype=args.autocast,
                              first_index=begin)
            batch_rows = [[
                out['inputs'][i], out['masked'][i], out['recon'][i]
            ] for i in range(len(batch))]
        for i, row in enumerate(batch_rows):
            save(osp.join(args.out, names[begin + i]), row)
        rows += batch_rows[:max(0, GRID_ROWS - len(rows))]
        bar.update(len(batch_rows))
    bar.close()
    grid = make_grid([[img.float() for img in row] for row in rows])
    save_png(osp.join(args.out, 'grid.png'), grid)
    print(f'wrote {count} image(s) and grid.png to {args.out}')


def _masked(out: dict, i: int, model: torch.nn.Module) -> torch.Tensor:
    """The sampler's start: the input with removed patches grey (grey
    everywhere without an input)."""
    from lmd_toolkit.apis.inference import patch_mask_to_pixels
    pixel = patch_mask_to_pixels(out['start_mask'][i:i + 1], model)[0] > 0
    if out['inputs'] is None:
        return torch.full_like(out['images'][i], 128)
    return torch.where(pixel, torch.full_like(out['inputs'][i], 128),
                       out['inputs'][i])


if __name__ == '__main__':
    try:
        main()
    except (ValueError, TypeError, FileNotFoundError, UnreadableFileError,
            StateDictMismatchError) as error:
        sys.exit(f'error: {error}')
