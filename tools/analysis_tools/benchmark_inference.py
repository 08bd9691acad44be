"""Reconstruction throughput: lmd_toolkit.apis vs an official-code-style loop.

    python tools/analysis_tools/benchmark_inference.py \
        [--config configs/_base_/models/lmd_vit-b_p2.py] [--num-images 4] \
        [--batch-size 4] [--repeats 2] [--mask-ratio 0.75] [--threads 2] \
        [--autocast bf16] [--device cuda]

Builds the model of ``--config`` (default: discriminative ViT-B LMD on the
kl-f8 latent of 224 px images) with RANDOM weights (the projector checkpoint
is dropped; speed does not depend on the weights) and times, in one process
on the same random uint8 images:

- ``official-style``: what the official MAE/LMD visualisation code does, one
  image at a time in fp32: encode -> masked ViT -> decoder -> paste ->
  decode, per image;
- ``apis.reconstruct``: the toolkit API, ``--batch-size`` images per
  forward, fp32; and with ``--autocast`` also the ViT under autocast (the
  projector stays fp32).

Each repetition runs every path once, in turn (so they share the machine's
load); the first (warm-up) round is not timed. Prints a Markdown table of
images/s (median over repetitions) and each path's speed relative to the
official-style loop.
"""
import argparse
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0,
                osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

from lmd_toolkit.apis import init_model, reconstruct  # noqa: E402
from lmd_toolkit.apis.inference import input_size, to_uint8  # noqa: E402


@torch.no_grad()
def official_style(model: torch.nn.Module, images: torch.Tensor,
                   mask_ratio: float, seed: int) -> torch.Tensor:
    """One image at a time, fp32, like the official ``run_one_image``."""
    outs = []
    device = next(model.parameters()).device
    for i in range(images.shape[0]):
        x = images[i:i + 1].to(device).float() / 127.5 - 1.0  # (1,3,H,W)
        z = model.projector.encode(x)
        g = torch.Generator(device).manual_seed(seed + i)
        enc, mask, ids_restore = model.backbone.forward_masked(
            z, mask_ratio, g)
        pred = model.neck(enc, ids_restore)
        latent = model.head.paste_prediction(pred, z, mask)
        outs.append(to_uint8(model.projector.decode(latent)))
    return torch.cat(outs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config',
                        default='configs/_base_/models/lmd_vit-b_p2.py')
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--mask-ratio', type=float, default=0.75)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--autocast', choices=['bf16', 'fp16'])
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    if args.repeats < 1 or args.num_images < 1:
        raise SystemExit('error: --repeats and --num-images must be >= 1')
    torch.set_num_threads(args.threads)

    print(f'building {args.config} with random weights ...', flush=True)
    torch.manual_seed(0)
    cfg = Config.fromfile(args.config)
    if 'checkpoint' in cfg.model.projector:
        cfg.model.projector.checkpoint = None  # random weights
    model = init_model(cfg, device=args.device)
    H, W = input_size(model)
    images = torch.randint(0,
                           256, (args.num_images, 3, H, W),
                           dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    paths = {
        'official-style (fp32, 1 image at a time)':
        lambda: official_style(model, images, args.mask_ratio, 0),
        f'apis.reconstruct (fp32, batch {args.batch_size})':
        lambda: reconstruct(
            model, images, args.mask_ratio, batch_size=args.batch_size),
    }
    if args.autocast:
        paths[f'apis.reconstruct ({args.autocast} ViT, batch '
              f'{args.batch_size})'] = lambda: reconstruct(
                  model,
                  images,
                  args.mask_ratio,
                  batch_size=args.batch_size,
                  autocast_dtype=args.autocast)
    times = {name: [] for name in paths}
    for rep in range(args.repeats + 1):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            label = 'warm-up' if rep == 0 else f'repeat {rep}'
            print(f'  {label}: {name}: {elapsed:.2f} s', flush=True)
            if rep > 0:
                times[name].append(elapsed)

    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f'\n{args.num_images} images of {H} x {W}, mask ratio '
          f'{args.mask_ratio}, {args.threads} threads, {params:.1f} M '
          f'parameters, median of {args.repeats} after 1 warm-up round\n')
    print('| path | s per round | images/s | vs official-style |')
    print('|---|---|---|---|')
    base = None
    for name, ts in times.items():
        med = statistics.median(ts)
        rate = args.num_images / med
        base = rate if base is None else base
        print(f'| {name} | {med:.2f} | {rate:.3f} | {rate / base:.2f}x |')


if __name__ == '__main__':
    main()
