"""Encode a config's dataset once with its frozen projector into a latent
cache (docs/en/latent_cache.md).

    python tools/misc/cache_latents.py CONFIG [--out DIR] [--split train]
        [--views K] [--dtype fp16|fp32] [--batch-size N] [--force]
        [--allow-random-projector]

Training builds the cache of a latent-first config by itself; this tool
builds it beforehand (e.g. on another machine): for a ``LatentCacheDataset``
with an image ``dataset`` it encodes that dataset with the dataset's views,
dtype, seed and chunk size into the very folder the training run will look
in. For an image dataset it writes to ``--out`` (default
``data/latent_cache/<config name>_<split>``). Rerunning the same command
resumes an interrupted cache and leaves a complete one alone. A projector
without weights (``model.projector.checkpoint=None``) is refused unless
``--allow-random-projector`` is given (or the ``LatentCacheDataset`` config
sets ``allow_random_projector=True``).
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
        help='cache folder (default: the folder training uses, or '
        'data/latent_cache/<config name>_<split> for an image dataset)')
    parser.add_argument('--split', default='train',
                        choices=['train', 'val', 'test'],
                        help='which <split>_dataloader.dataset to encode')
    parser.add_argument('--views', type=int, default=None,
                        help='augmented views per image (K; default: the '
                        "dataset's num_views, or 1)")
    parser.add_argument('--dtype', default=None, choices=['fp16', 'fp32'],
                        help='storage type of the latents')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='images per encode call and per flushed chunk')
    parser.add_argument('--seed', type=int, default=None,
                        help='seed of the view augmentations')
    parser.add_argument('--force', action='store_true',
                        help='recompute a complete cache / replace a cache '
                        'of another request in --out')
    parser.add_argument('--allow-random-projector', action='store_true',
                        help='encode with a projector whose weights are '
                        'not loaded (model.projector.checkpoint=None), for '
                        'tests and ablations')
    parser.add_argument('--max-chunks', type=int, default=None,
                        help='stop after this many chunks (to test resume)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. '
                        'model.projector.checkpoint=vae.pth')
    return parser.parse_args()


def training_cache_dir(cfg: Config, dataset_cfg: dict) -> str:
    """The folder a training run of ``cfg`` keeps this dataset's cache in."""
    from lmd_toolkit.registry import DATASETS, MODELS
    projector = MODELS.build(cfg.model.projector.to_dict())
    return DATASETS.build(dataset_cfg).cache_dir_for(projector)


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
    dataset = loader.dataset.to_dict()
    request = dict(num_views=1, dtype='fp16', batch_size=16, seed=0)
    out = args.out
    allow_random = args.allow_random_projector or bool(
        dataset.get('type') == 'LatentCacheDataset'
        and dataset.get('allow_random_projector'))
    if dataset.get('type') == 'LatentCacheDataset':
        if 'dataset' not in dataset:
            raise SystemExit(f'{args.split}_dataloader.dataset of '
                             f'{args.config} reads the cache '
                             f"{dataset.get('cache_dir')}; it names no image "
                             'dataset to encode.')
        request.update({k: dataset[k] for k in request if k in dataset})
    flags = dict(num_views=args.views, dtype=args.dtype,
                 batch_size=args.batch_size, seed=args.seed)
    request.update({k: v for k, v in flags.items() if v is not None})
    if dataset.get('type') == 'LatentCacheDataset':
        if out is None:
            out = training_cache_dir(cfg, {**dataset, **request})
        dataset = dataset['dataset']
    out = out or osp.join(
        'data', 'latent_cache',
        f'{osp.splitext(osp.basename(args.config))[0]}_{args.split}')
    manifest = write_latent_cache(
        cfg.model.projector.to_dict(),
        dataset,
        out,
        data_preprocessor_cfg=(cfg.model.get('data_preprocessor')
                               or cfg.get('data_preprocessor')),
        force=args.force,
        max_chunks=args.max_chunks,
        config_file=args.config,
        allow_random_projector=allow_random,
        **request)
    print(f'{out}: {manifest["num_done"]}/{manifest["num_rows"]} latents '
          f'{manifest["latent_shape"]} {manifest["dtype"]}, '
          f'{manifest["state"]}')


if __name__ == '__main__':
    main()
