"""Encode a config's dataset once with its frozen projector into a latent
cache (docs/en/latent_cache.md).

    python tools/misc/cache_latents.py CONFIG [--out DIR] [--split train]
        [--views K] [--dtype fp16|fp32] [--batch-size N] [--force]

Rerunning the same command resumes an interrupted cache and leaves a
complete one alone.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmengine.config import Config, DictAction  # noqa: E402

from lmd_toolkit.datasets.latent_cache import write_latent_cache  # noqa: E402
from lmd_toolkit.utils import register_all_modules  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Encode a dataset into a latent cache')
    parser.add_argument('config', help='config with model.projector and an '
                        'image dataloader')
    parser.add_argument(
        '--out',
        help='cache folder (default: data/latent_cache/<config name>_<split>)')
    parser.add_argument('--split', default='train',
                        choices=['train', 'val', 'test'],
                        help='which <split>_dataloader.dataset to encode')
    parser.add_argument('--views', type=int, default=1,
                        help='augmented views per image (K)')
    parser.add_argument('--dtype', default='fp16', choices=['fp16', 'fp32'],
                        help='storage type of the latents')
    parser.add_argument('--batch-size', type=int, default=16,
                        help='images per encode call and per flushed chunk')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the view augmentations')
    parser.add_argument('--force', action='store_true',
                        help='recompute a complete cache / replace a cache '
                        'of another request in --out')
    parser.add_argument('--max-chunks', type=int, default=None,
                        help='stop after this many chunks (to test resume)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. '
                        'model.projector.checkpoint=vae.pth')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    loader = cfg.get(f'{args.split}_dataloader')
    if not loader or 'dataset' not in loader:
        raise SystemExit(f'{args.config} has no {args.split}_dataloader.'
                         'dataset to encode; choose another --split.')
    out = args.out or osp.join(
        'data', 'latent_cache',
        f'{osp.splitext(osp.basename(args.config))[0]}_{args.split}')
    manifest = write_latent_cache(
        cfg.model.projector.to_dict(),
        loader.dataset.to_dict(),
        out,
        num_views=args.views,
        dtype=args.dtype,
        batch_size=args.batch_size,
        seed=args.seed,
        data_preprocessor_cfg=(cfg.model.get('data_preprocessor')
                               or cfg.get('data_preprocessor')),
        force=args.force,
        max_chunks=args.max_chunks,
        config_file=args.config)
    print(f'{out}: {manifest["num_done"]}/{manifest["num_rows"]} latents '
          f'{manifest["latent_shape"]} {manifest["dtype"]}, '
          f'{manifest["state"]}')


if __name__ == '__main__':
    main()
