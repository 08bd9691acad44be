"""Time LMD training iterations from a latent cache against encoding every
batch with the frozen projector on the fly, side by side in one process.

One LMD model (the config's, default ViT-B on the kl-f8 latent) with a
randomly initialised projector (no weights are needed for timing) is trained
alternately on

* on-the-fly: uint8 crops of the embedded photos -> data preprocessor ->
  ``projector.encode`` -> masked ViT (the official code's way);
* cache: the same crops' latents, written once beforehand by
  ``write_latent_cache`` and read from the memory map.

An iteration is ``model.train_step`` (preprocessing, encode when on the fly,
forward, backward, AdamW step) plus fetching the batch from its dataset.
Warm-up iterations are not timed; medians are reported.

Example:
  python tools/analysis_tools/benchmark_latent_cache.py --iters 3 --warmup 1
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Callable, List

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import default_collate  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402

from lmd_toolkit.datasets import (EmbeddedPhotos,  # noqa: E402
                                  LatentCacheDataset, write_latent_cache)
from lmd_toolkit.registry import MODELS  # noqa: E402
from lmd_toolkit.utils import register_all_modules  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config',
                        default=osp.join(ROOT, 'configs',
                                         'lmd_vit-b_in1k_cs.py'),
                        help='config of the LMD model and its projector')
    parser.add_argument('--img-size', type=int, default=256)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--iters', type=int, default=3,
                        help='timed iterations per mode')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed iterations per mode')
    parser.add_argument('--dtype', default='fp16', choices=['fp16', 'fp32'])
    parser.add_argument('--threads', type=int, default=None,
                        help="torch.set_num_threads (default: torch's)")
    return parser.parse_args()


def build_model(cfg: Config, img_size: int) -> torch.nn.Module:
    """The config's LMD with a random projector, resized to ``img_size``."""
    model_cfg = cfg.model.to_dict()
    model_cfg['projector']['checkpoint'] = None
    factor = MODELS.build(model_cfg['projector']).downsample_factor
    latent = img_size // factor
    p = model_cfg['backbone']['patch_size']
    model_cfg['backbone']['latent_size'] = latent
    model_cfg['neck']['num_patches'] = (latent // p)**2
    model = MODELS.build(model_cfg)
    model.train()
    return model


def timed(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    model = build_model(cfg, args.img_size)
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-4))
    n = args.batch_size * (args.iters + args.warmup)
    dataset_cfg = dict(type='EmbeddedPhotos', split='train',
                       crop_size=args.img_size, num_crops=n,
                       pipeline=[dict(type='mmpretrain.PackInputs')])
    images = EmbeddedPhotos(split='train', crop_size=args.img_size,
                            num_crops=n,
                            pipeline=[dict(type='mmpretrain.PackInputs')])
    with tempfile.TemporaryDirectory() as tmp:
        projector_cfg = cfg.model.projector.to_dict()
        projector_cfg['checkpoint'] = None
        start = time.perf_counter()
        # Timing only: a random projector encodes as fast as a trained one.
        write_latent_cache(projector_cfg, dataset_cfg, tmp, num_views=1,
                           dtype=args.dtype, batch_size=args.batch_size,
                           allow_random_projector=True)
        cache_seconds = time.perf_counter() - start
        latents = LatentCacheDataset(tmp)
        times: dict = dict(on_the_fly=[], cache=[])
        for it in range(args.warmup + args.iters):
            rows = range(it * args.batch_size, (it + 1) * args.batch_size)
            for mode, dataset in (('on_the_fly', images),
                                  ('cache', latents)):

                def step() -> None:
                    batch = default_collate([dataset[i] for i in rows])
                    model.train_step(batch, optim)

                seconds = timed(step)
                if it >= args.warmup:
                    times[mode].append(seconds)
    fly, cached = (statistics.median(times[m]) for m in ('on_the_fly',
                                                         'cache'))
    proj = cfg.model.projector
    print(f'\nLMD {osp.basename(args.config)}, projector {proj.type}'
          f"(preset={proj.get('preset')!r}, random weights), "
          f'{args.img_size} px, batch {args.batch_size}, threads '
          f'{torch.get_num_threads()}, median of {args.iters} after '
          f'{args.warmup} warm-up')
    print(f'writing the cache once: {cache_seconds:.2f} s for {n} images '
          f'({cache_seconds / n:.2f} s/image, {args.dtype})')
    rows: List[tuple] = [('on-the-fly encoding', fly), ('latent cache',
                                                         cached)]
    print('| mode | s / iteration |\n|---|---|')
    for name, value in rows:
        print(f'| {name} | {value:.3f} |')
    print(f'speed-up (on-the-fly / cache): {fly / cached:.2f}x')


if __name__ == '__main__':
    main()
