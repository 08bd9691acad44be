"""Latents of a dataset encoded once by the frozen projector, read back for
training.

The official LMD code re-encodes every image at every iteration; with a cache
the projector runs once per (image, view) and training reads
``(d, h, w)`` latents from a memory-mapped array. A cache folder holds

* ``latents.npy``: ``(N * K, d, h, w)`` float16 / float32, row
  ``source_index * K + view`` (image-major);
* ``progress.npy``: one byte per chunk of rows, 1 once the chunk is written
  and flushed (what an interrupted build resumes from);
* ``manifest.json``: what made it (the projector's fingerprint, dataset,
  pipeline, views, dtype) and how far writing got.

:class:`LatentCacheDataset` given an image ``dataset`` builds its cache at
the start of training (``LatentCacheHook``, with the model's own projector,
every rank encoding its share) and reuses it in later runs; given only a
``cache_dir`` it serves a cache made before. :func:`write_latent_cache` is
the config-level API (CLI: ``tools/misc/cache_latents.py``);
:func:`build_latent_cache` does the work. See docs/en/latent_cache.md.
"""
import copy
import datetime
import hashlib
import json
import os
import os.path as osp
import random
import time
from typing import List, Optional, Union

import numpy as np
import torch
from mmengine.dataset import BaseDataset
from mmengine.dist import (all_reduce, broadcast, broadcast_object_list,
                           get_dist_info)
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from numpy.lib.format import open_memmap

from lmd_toolkit.models.projectors.fingerprint import (
    CHECKED_FIELDS, LatentCacheMismatchError, same_field)
from lmd_toolkit.registry import DATASETS

__all__ = [
    'LatentCacheDataset', 'LatentCacheMismatchError', 'build_latent_cache',
    'write_latent_cache', 'read_manifest', 'load_view', 'view_seed'
]

MANIFEST_FILE = 'manifest.json'
LATENTS_FILE = 'latents.npy'
PROGRESS_FILE = 'progress.npy'
FORMAT_VERSION = 1
DTYPES = dict(fp16=np.float16, fp32=np.float32)
# Manifest fields that must agree for a resume / reuse.
REQUEST_FIELDS = ('dataset', 'pipeline', 'num_images', 'num_views', 'dtype',
                  'view_seed', 'image_size', 'latent_shape')


# ------------------------------------------------------------------ views
def view_seed(seed: int, index: int, view: int) -> int:
    """Seed of the augmentation of ``view`` of image ``index``."""
    state = np.random.SeedSequence([seed, index, view]).generate_state(1)
    return int(state[0])


def load_view(dataset, index: int, view: int, seed: int = 0) -> dict:
    """``dataset[index]`` with ``random``, ``numpy`` and ``torch`` seeded by
    :func:`view_seed`, so a view's random augmentation is the same in every
    run; the global random states are restored afterwards."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        s = view_seed(seed, index, view)
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)
        return dataset[index]
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


# --------------------------------------------------------------- manifest
def read_manifest(cache_dir: str) -> dict:
    """The manifest of a cache folder (error naming the folder if absent)."""
    path = osp.join(cache_dir, MANIFEST_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{cache_dir} is not a latent cache: {MANIFEST_FILE} is missing. '
            'Make one with tools/misc/cache_latents.py CONFIG --out '
            f'{cache_dir}, or give LatentCacheDataset the image dataset '
            '(dataset=...) so that training builds it.')
    with open(path) as f:
        return json.load(f)


def _write_manifest(cache_dir: str, manifest: dict) -> None:
    """Write atomically (temp file + rename): a crash leaves the old one."""
    manifest['updated'] = _now()
    tmp = osp.join(cache_dir, MANIFEST_FILE + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(manifest, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, osp.join(cache_dir, MANIFEST_FILE))


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec='seconds')


def _jsonable(obj):
    """Config values (ConfigDict, tuples) as plain JSON values."""
    return json.loads(json.dumps(obj, default=str))


def _request_differences(old: dict, new: dict) -> List[str]:
    """Fields of two manifests that must agree for a resume / reuse."""
    out = [
        f'{key}: existing {old.get(key)!r}, requested {new.get(key)!r}'
        for key in REQUEST_FIELDS if old.get(key) != new.get(key)
    ]
    old_p, new_p = old.get('projector', {}), new.get('projector', {})
    for key in CHECKED_FIELDS + ('scale_factor_mode', ):
        if key == 'scale_factor' and new_p.get('scale_factor_mode') == 'auto':
            continue  # computed from the first chunk; the old value is kept
        if not same_field(key, old_p.get(key), new_p.get(key)):
            out.append(f'projector.{key}: existing {old_p.get(key)!r}, '
                       f'requested {new_p.get(key)!r}')
    return out


def cache_key(fingerprint: dict, dataset_cfg: dict, num_views: int,
              dtype: str, seed: int) -> str:
    """16 hex digits naming a cache of this request: equal for every config
    with the same projector fingerprint (without the checkpoint path, and
    without an ``'auto'`` scale factor's value, which the cache decides),
    image dataset, pipeline, views, dtype and seed."""
    projector = {
        k: v
        for k, v in fingerprint.items() if k != 'checkpoint' and not (
            k == 'scale_factor' and fingerprint.get('scale_factor_mode') ==
            'auto')
    }
    text = json.dumps(
        _jsonable(
            dict(projector=projector,
                 dataset=dataset_cfg,
                 num_views=num_views,
                 dtype=dtype,
                 seed=seed)),
        sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- writing
def _check_request(num_views: int, dtype: str, batch_size: int) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be 'fp16' or 'fp32', got {dtype!r}.")
    if not isinstance(num_views, int) or isinstance(num_views,
                                                    bool) or num_views < 1:
        raise ValueError(f'num_views must be a positive int, got '
                         f'{num_views!r}.')
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive int, got '
                         f'{batch_size!r}.')


def build_latent_cache(projector: torch.nn.Module,
                       dataset,
                       out_dir: str,
                       preprocessor: torch.nn.Module,
                       dataset_cfg: dict,
                       num_views: int = 1,
                       dtype: str = 'fp16',
                       batch_size: int = 16,
                       seed: int = 0,
                       force: bool = False,
                       max_chunks: Optional[int] = None,
                       num_workers: int = 0,
                       extra: Optional[dict] = None) -> dict:
    """Encode every image of ``dataset`` ``num_views`` times into
    ``out_dir`` with a built, frozen ``projector``.

    Creates, resumes, or (when complete) leaves alone the cache. Under
    ``torch.distributed`` every rank must call it: rank 0 creates the files,
    rank ``r`` encodes the chunks ``c`` with ``c % world_size == r``, and
    rank 0 seals the manifest once every chunk is written; all ranks return
    after that. Chunks hold the same rows in every world size, so the bytes
    equal a single process's (for the same per-process thread count).

    Args:
        projector (nn.Module): A ``BaseProjector`` (weights loaded).
        dataset: The image dataset (items ``dict(inputs=uint8 (3, H, W))``).
        out_dir (str): Cache folder (created; must be new, empty, or a cache
            of the same request).
        preprocessor (nn.Module): Maps packed uint8 images to the
            projector's [-1, 1] (``LMDDataPreprocessor``).
        dataset_cfg (dict): The dataset's config with its pipeline
            (recorded in the manifest and compared on reuse).
        num_views (int): Augmented views per image (K). Defaults to 1.
        dtype (str): 'fp16' or 'fp32' storage. Defaults to 'fp16'.
        batch_size (int): Images per encode call = rows per chunk.
            Defaults to 16.
        seed (int): Seed of the view augmentations (:func:`view_seed`).
            Defaults to 0.
        force (bool): Recompute a complete cache or replace another request's
            cache in ``out_dir``. Defaults to False.
        max_chunks (int, optional): Stop after this many chunks per rank (an
            interruption, for tests of resuming). Defaults to None.
        num_workers (int): Processes that read and augment the images.
            Defaults to 0 (this process).
        extra (dict, optional): More provenance fields for the manifest.

    Returns:
        dict: The manifest as written.
    """
    from lmd_toolkit.version import __version__
    _check_request(num_views, dtype, batch_size)
    rank, world_size = get_dist_info()
    num_images = len(dataset)
    if num_images == 0:
        raise ValueError(f'The dataset {dataset_cfg.get("type")} is empty.')
    total = num_images * num_views
    num_chunks = -(-total // batch_size)

    views = _ViewRows(dataset, num_views, seed)

    def images(rows) -> torch.Tensor:
        return to_inputs([views[r] for r in rows])

    def to_inputs(items: list) -> torch.Tensor:
        return preprocessor(dict(inputs=[torch.as_tensor(i)
                                          for i in items]))['inputs']

    def chunk_rows(c: int) -> range:
        return range(c * batch_size, min((c + 1) * batch_size, total))

    first = images(range(1))
    f = projector.downsample_factor
    height, width = first.shape[2:]
    if height % f or width % f:
        raise ValueError(f'Image size {height}x{width} is not divisible by '
                         f'the projector downsample factor {f}; resize or '
                         'crop the images in the pipeline.')
    latent_shape = [projector.latent_channels, height // f, width // f]
    args = {k: v for k, v in dataset_cfg.items() if k not in ('type',
                                                              'pipeline')}
    manifest = _jsonable(dict(
        format_version=FORMAT_VERSION,
        state='in_progress',
        num_done=0,
        num_rows=total,
        num_images=num_images,
        num_views=num_views,
        row_order='row = source_index * num_views + view',
        view_seed=seed,
        latent_shape=latent_shape,
        dtype=np.dtype(DTYPES[dtype]).name,
        image_size=[height, width],
        projector=projector.fingerprint(),
        dataset=dict(type=dataset_cfg.get('type'), args=args),
        pipeline=list(dataset_cfg.get('pipeline', [])),
        chunk_rows=batch_size,
        encode_seconds=0.0,
        toolkit_version=__version__,
        created=_now(),
        **(extra or {})))

    # Rank 0 decides (new / resume / complete / refuse) and creates the
    # files; the others follow its decision.
    decision = [None]
    if rank == 0:
        try:
            decision[0] = _prepare_files(out_dir, manifest, force,
                                         num_chunks)
        except Exception as error:  # every rank raises the same error
            decision[0] = dict(error=error)
    if world_size > 1:
        broadcast_object_list(decision, src=0)
    decision = decision[0]
    if 'error' in decision:
        raise decision['error']
    manifest = decision['manifest']
    if decision['complete']:
        return manifest
    auto = getattr(projector, 'auto_scale', False)
    if auto and manifest['projector']['scale_factor'] is not None:
        projector.scale_factor.fill_(float(manifest['projector']
                                           ['scale_factor']))
    elif auto:  # on chunk 0's images by rank 0, whatever the world size
        if rank == 0:
            projector.calibrate_scale_factor(images(chunk_rows(0)),
                                             pool_ranks=False)
        if world_size > 1:
            broadcast(projector.scale_factor, src=0)
    if decision['resume'] and rank == 0:
        print_log(f'{out_dir}: resuming at latent {manifest["num_done"]} of '
                  f'{total}.', logger='current')

    array = np.load(osp.join(out_dir, LATENTS_FILE), mmap_mode='r+')
    progress = np.load(osp.join(out_dir, PROGRESS_FILE), mmap_mode='r+')
    mine = [c for c in range(rank, num_chunks, world_size) if not progress[c]]
    if max_chunks is not None:
        mine = mine[:max_chunks]
    np_dtype = DTYPES[dtype]
    bar = ProgressBar(sum(len(chunk_rows(c)) for c in mine) * world_size) \
        if rank == 0 and mine else None
    start = time.perf_counter()
    # Images are read (and augmented) by `num_workers` processes, a chunk a
    # batch, in the order of `mine`.
    loader = torch.utils.data.DataLoader(
        views, batch_sampler=[list(chunk_rows(c)) for c in mine],
        num_workers=num_workers, collate_fn=list)
    for c, items in zip(mine, loader):
        rows = chunk_rows(c)
        z = projector.encode(to_inputs(items)).cpu().numpy()
        stored = z.astype(np_dtype)
        if not np.isfinite(stored).all():
            raise ValueError(
                f'{out_dir}: latents of rows {rows.start}-{rows.stop - 1} are '
                f'not finite in {np.dtype(np_dtype).name} (max |z| = '
                f'{np.abs(z).max():.4g}); use dtype fp32.')
        array[rows.start:rows.stop] = stored
        array.flush()
        progress[c] = 1  # only after the latents are on disk
        progress.flush()
        if world_size == 1:  # resumable from the manifest's count too
            manifest['num_done'] += len(rows)
            _write_manifest(out_dir, manifest)
        if bar is not None:
            bar.update(len(rows) * world_size)
    seconds = time.perf_counter() - start
    del array
    # The slowest rank's time; the collective also waits for every rank's
    # chunks to be flushed (a no-op in one process).
    slowest = torch.tensor([seconds], dtype=torch.float64)
    all_reduce(slowest, op='max')
    seconds = float(slowest)
    if rank == 0:
        done = np.load(osp.join(out_dir, PROGRESS_FILE)).astype(bool)
        manifest['num_done'] = sum(len(chunk_rows(c)) for c in
                                   np.flatnonzero(done))
        manifest['encode_seconds'] = round(
            float(manifest.get('encode_seconds', 0.0)) + seconds, 3)
        manifest['projector']['scale_factor'] = float(projector.scale_factor)
        if done.all():
            manifest['state'] = 'complete'
        else:
            print_log(f'\n{out_dir}: stopped at {manifest["num_done"]}/'
                      f'{total} latents; run again to resume.',
                      logger='current')
        _write_manifest(out_dir, manifest)
    if world_size > 1:
        result = [manifest if rank == 0 else None]
        broadcast_object_list(result, src=0)
        manifest = result[0]
    return manifest


class _ViewRows(torch.utils.data.Dataset):
    """Row ``r`` of a cache: the packed image of view ``r % K`` of image
    ``r // K``, augmented with its seeded randomness."""

    def __init__(self, dataset, num_views: int, seed: int) -> None:
        self.dataset, self.num_views, self.seed = dataset, num_views, seed

    def __len__(self) -> int:
        return len(self.dataset) * self.num_views

    def __getitem__(self, row: int):
        index, view = divmod(row, self.num_views)
        return load_view(self.dataset, index, view, self.seed)['inputs']


def _prepare_files(out_dir: str, manifest: dict, force: bool,
                   num_chunks: int) -> dict:
    """Rank 0: compare with what ``out_dir`` holds and create or reopen the
    files. Returns ``manifest`` (the one to continue), ``resume`` and
    ``complete``."""
    latents_path = osp.join(out_dir, LATENTS_FILE)
    progress_path = osp.join(out_dir, PROGRESS_FILE)
    np_dtype = np.dtype(manifest['dtype'])
    shape = (manifest['num_rows'], *manifest['latent_shape'])
    if osp.isdir(out_dir) and os.listdir(out_dir):
        if not osp.isfile(osp.join(out_dir, MANIFEST_FILE)):
            raise FileExistsError(
                f'{out_dir} is not empty and holds no {MANIFEST_FILE}: it is '
                'not a latent cache. Choose a new or empty folder.')
        old = read_manifest(out_dir)
        diff = _request_differences(old, manifest)
        if diff and not force:
            raise LatentCacheMismatchError(
                f'{out_dir} holds a cache of another request:\n  ' +
                '\n  '.join(diff) + '\nChoose another cache folder, or pass '
                '--force (force=True) to replace that cache.')
        if not diff and old.get('state') == 'complete' and not force:
            print_log(f'{out_dir}: the cache is complete ({old["num_rows"]} '
                      'latents); nothing to do (pass --force to recompute).',
                      logger='current')
            return dict(manifest=old, resume=False, complete=True)
        if not force and osp.isfile(latents_path):
            array = np.load(latents_path, mmap_mode='r')
            if array.shape != shape or array.dtype != np_dtype:
                raise LatentCacheMismatchError(
                    f'{latents_path} is {array.shape} {array.dtype}, the '
                    f'manifest says {shape} {np_dtype.name}: the cache is '
                    'damaged; pass --force to rebuild it.')
            del array
            if not osp.isfile(progress_path):  # a cache of an older build
                done = np.zeros(num_chunks, np.uint8)
                done[:int(old['num_done']) // manifest['chunk_rows']] = 1
                np.save(progress_path, done)
            for key in ('created', 'num_done', 'encode_seconds'):
                manifest[key] = old.get(key, manifest[key])
            manifest['projector']['scale_factor'] = \
                old['projector']['scale_factor']
            return dict(manifest=manifest, resume=True, complete=False)
    os.makedirs(out_dir, exist_ok=True)
    for name in (MANIFEST_FILE, LATENTS_FILE, PROGRESS_FILE):  # afresh
        if osp.isfile(osp.join(out_dir, name)):
            os.remove(osp.join(out_dir, name))
    array = open_memmap(latents_path, mode='w+', dtype=np_dtype, shape=shape)
    del array
    np.save(progress_path, np.zeros(num_chunks, np.uint8))
    _write_manifest(out_dir, manifest)
    return dict(manifest=manifest, resume=False, complete=False)


def write_latent_cache(projector_cfg: dict,
                       dataset_cfg: dict,
                       out_dir: str,
                       num_views: int = 1,
                       dtype: str = 'fp16',
                       batch_size: int = 16,
                       seed: int = 0,
                       data_preprocessor_cfg: Optional[dict] = None,
                       force: bool = False,
                       max_chunks: Optional[int] = None,
                       config_file: Optional[str] = None) -> dict:
    """Build a projector and an image dataset from their configs and encode
    the dataset ``num_views`` times into ``out_dir``
    (:func:`build_latent_cache`).

    Args:
        projector_cfg (dict): Projector config (built, ``init_weights()`` -
            which loads its checkpoint - and frozen).
        dataset_cfg (dict): Image dataset config with its pipeline (ending in
            ``PackInputs``).
        out_dir (str): Cache folder.
        num_views (int): Augmented views per image (K). Defaults to 1.
        dtype (str): 'fp16' or 'fp32' storage. Defaults to 'fp16'.
        batch_size (int): Images per encode call = rows per chunk.
            Defaults to 16.
        seed (int): Seed of the view augmentations. Defaults to 0.
        data_preprocessor_cfg (dict, optional): Maps packed uint8 images to
            the projector's [-1, 1]. Defaults to ``LMDDataPreprocessor``.
        force (bool): Recompute / replace. Defaults to False.
        max_chunks (int, optional): Stop after this many chunks.
            Defaults to None.
        config_file (str, optional): Recorded in the manifest.

    Returns:
        dict: The manifest as written.
    """
    from lmd_toolkit.registry import MODELS
    _check_request(num_views, dtype, batch_size)
    if dataset_cfg.get('type') == 'LatentCacheDataset':
        raise ValueError(
            'The dataset to cache is a LatentCacheDataset already; pass its '
            "image dataset (its 'dataset' entry).")
    projector = MODELS.build(copy.deepcopy(projector_cfg))
    projector.init_weights()
    projector.freeze()
    preprocessor = MODELS.build(
        copy.deepcopy(data_preprocessor_cfg
                      or dict(type='LMDDataPreprocessor')))
    dataset = DATASETS.build(copy.deepcopy(dataset_cfg))
    return build_latent_cache(
        projector, dataset, out_dir, preprocessor, dataset_cfg,
        num_views=num_views, dtype=dtype, batch_size=batch_size, seed=seed,
        force=force, max_chunks=max_chunks,
        extra=dict(projector_config=projector_cfg, config=config_file))


# ---------------------------------------------------------------- reading
@DATASETS.register_module()
class LatentCacheDataset(BaseDataset):
    """Latents of an image dataset encoded once by the frozen projector,
    read from a memory map (opened lazily in each process / worker).

    Two ways to use it:

    * **Latent-first** (``dataset`` given): ``cache_dir`` is a root folder;
      the cache of this request lives in
      ``<cache_dir>/<dataset type>_<key>``, the key a hash of the projector
      fingerprint, the image dataset and pipeline, ``num_views``, ``dtype``
      and ``seed`` (:func:`cache_key`). ``LatentCacheHook`` (in the default
      runtime) builds it at the start of training with the model's own
      projector, or reuses it; every config with the same projector and data
      shares it. ``encode_on_the_fly=True`` skips the cache: items are the
      image dataset's (a fresh augmentation every epoch; as many items per
      epoch as from the cache) and the model encodes them.
    * **A cache made before** (``dataset`` None): ``cache_dir`` is the cache
      folder (``tools/misc/cache_latents.py``); it must be complete.

    Each item is ``dict(inputs=Tensor (d, h, w) float32, data_samples=
    DataSample)`` whose metainfo holds ``sample_idx``, ``source_idx`` (index
    of the image in the cached dataset), ``view``, ``flip``, ``img_shape``,
    ``input_type='latent'`` (tells ``LMDDataPreprocessor`` and
    ``LatentMaskingDiffusion`` to skip rescaling and encoding) and
    ``latent_source`` (the manifest's projector fingerprint, which the model
    checks against its own projector).

    Args:
        cache_dir (str): The cache folder, or with ``dataset`` the root
            folder of caches. Defaults to 'data/latent_cache'.
        views (str | int): ``'all'``: every (image, view) row is an item
            (N * K items); ``'random'``: N items, each draws one of its K
            views at random per access; an int: that view of every image.
            Defaults to 'all'.
        flip_prob (float): Probability of flipping a latent horizontally.
            Opt-in: for a KL / VQ projector the flipped latent is close to,
            but not exactly, the latent of the flipped image. Defaults to 0.0.
        dataset (dict, optional): Config of the image dataset to encode,
            with its pipeline (ending in ``PackInputs``). Defaults to None.
        num_views (int): With ``dataset``: augmented views per image (K),
            each an independent, seeded run of the pipeline. Defaults to 1.
        dtype (str): With ``dataset``: 'fp16' or 'fp32' storage.
            Defaults to 'fp16'.
        seed (int): With ``dataset``: seed of the view augmentations.
            Defaults to 0.
        batch_size (int): With ``dataset``: images per encode call (rows per
            chunk, the unit of resuming and of the work split over ranks).
            Defaults to 16.
        num_workers (int): With ``dataset``: processes that read the images
            while the cache is built. Defaults to 0.
        encode_on_the_fly (bool): With ``dataset``: serve its images instead
            of cached latents. Defaults to False.
        test_mode (bool): mmengine's test mode. Defaults to False.
    """

    def __init__(self,
                 cache_dir: str = 'data/latent_cache',
                 views: Union[str, int] = 'all',
                 flip_prob: float = 0.0,
                 dataset: Optional[dict] = None,
                 num_views: int = 1,
                 dtype: str = 'fp16',
                 seed: int = 0,
                 batch_size: int = 16,
                 num_workers: int = 0,
                 encode_on_the_fly: bool = False,
                 test_mode: bool = False) -> None:
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f'flip_prob must be in [0, 1], got {flip_prob}.')
        self.flip_prob = flip_prob
        self.views = views
        self.encode_on_the_fly = encode_on_the_fly
        self._array = None
        self._pid = None
        self.manifest = None
        if dataset is None:
            if encode_on_the_fly:
                raise ValueError('LatentCacheDataset: encode_on_the_fly=True '
                                 'needs the image dataset (dataset=...).')
            self.image_dataset = self.dataset_cfg = None
            self._open(cache_dir)
        else:
            if isinstance(dataset, dict) and \
                    dataset.get('type') == 'LatentCacheDataset':
                raise ValueError('LatentCacheDataset: dataset= is the image '
                                 'dataset to encode, not another '
                                 'LatentCacheDataset.')
            _check_request(num_views, dtype, batch_size)
            self._check_views(num_views)
            self.cache_root = cache_dir
            self.cache_dir = None  # <cache_root>/<name>, once bound
            self.num_views, self.dtype = num_views, dtype
            self.seed, self.batch_size = seed, batch_size
            self.num_workers = num_workers
            self.dataset_cfg = _jsonable(dataset)
            self.image_dataset = DATASETS.build(copy.deepcopy(dataset))
        super().__init__(pipeline=[], test_mode=test_mode,
                         serialize_data=False, lazy_init=True)
        self._fully_initialized = True  # items are computed, not listed

    def _check_views(self, k: int) -> None:
        views = self.views
        if views not in ('all', 'random') and not (
                isinstance(views, int) and 0 <= views < k):
            raise ValueError(f"views must be 'all', 'random' or a view index "
                             f'in [0, {k}), got {views!r}.')

    def _open(self, cache_dir: str) -> None:
        """Check a complete cache folder and serve it."""
        m = read_manifest(cache_dir)
        if m.get('format_version') != FORMAT_VERSION:
            raise ValueError(f'{cache_dir}: cache format '
                             f'{m.get("format_version")}, this toolkit reads '
                             f'{FORMAT_VERSION}; rebuild the cache.')
        if m.get('state') != 'complete':
            raise ValueError(
                f'{cache_dir}: the cache is incomplete ({m.get("num_done")} '
                f'of {m.get("num_rows")} latents); rerun '
                f'tools/misc/cache_latents.py {m.get("config") or "CONFIG"} '
                f'--out {cache_dir}, or train with a config whose '
                'LatentCacheDataset names the image dataset, to finish it.')
        self._check_views(m['num_views'])
        latents_path = osp.join(cache_dir, LATENTS_FILE)
        shape = (m['num_rows'], *m['latent_shape'])
        array = np.load(latents_path, mmap_mode='r')
        if array.shape != shape or array.dtype.name != m['dtype']:
            raise ValueError(f'{latents_path} is {array.shape} '
                             f'{array.dtype}, the manifest says {shape} '
                             f"{m['dtype']}; the cache is damaged.")
        del array
        self.cache_dir, self.latents_path, self.manifest = (cache_dir,
                                                            latents_path, m)
        self._array = None

    # --------------------------------------------------------- latent-first
    @property
    def needs_cache(self) -> bool:
        """True for a latent-first dataset whose cache is not bound yet."""
        return self.manifest is None and not self.encode_on_the_fly

    def cache_dir_for(self, projector: torch.nn.Module) -> str:
        """The cache folder of this request for ``projector``."""
        key = cache_key(projector.fingerprint(), self.dataset_cfg,
                        self.num_views, self.dtype, self.seed)
        name = str(self.dataset_cfg.get('type', 'dataset')).split('.')[-1]
        return osp.join(self.cache_root, f'{name}_{key}')

    def prepare(self, projector: torch.nn.Module,
                preprocessor: torch.nn.Module) -> None:
        """Build (every rank its share), resume or reuse the cache of this
        request with ``projector``, then serve it. A projector that is not
        ``cacheable`` (the identity) switches to encoding on the fly.

        Args:
            projector (nn.Module): The model's frozen ``BaseProjector``.
            preprocessor (nn.Module): The model's data preprocessor.
        """
        if not self.needs_cache:
            return
        if not getattr(projector, 'cacheable', True):
            print_log(f'LatentCacheDataset: {type(projector).__name__} is '
                      'not cached (its latents are the images); serving the '
                      'images.', logger='current')
            self.encode_on_the_fly = True
            return
        cache_dir = self.cache_dir_for(projector)
        rank, _ = get_dist_info()
        if rank == 0:
            print_log(f'LatentCacheDataset: latents of '
                      f'{self.dataset_cfg.get("type")} ({len(self.image_dataset)}'
                      f' images x {self.num_views} views, {self.dtype}) in '
                      f'{cache_dir}', logger='current')
        build_latent_cache(projector, self.image_dataset, cache_dir,
                           preprocessor, self.dataset_cfg,
                           num_views=self.num_views, dtype=self.dtype,
                           batch_size=self.batch_size, seed=self.seed,
                           num_workers=self.num_workers)
        self._open(cache_dir)
        # Fail before training, not at its first batch; an uncalibrated
        # 'auto' scale factor takes the cache's value here.
        projector.check_fingerprint(self.manifest['projector'],
                                    where=f'latent cache {cache_dir}')

    # -------------------------------------------------------------- reading
    def full_init(self) -> None:
        """Nothing to load: items are index arithmetic on the memory map."""
        self._fully_initialized = True

    def __len__(self) -> int:
        if self.manifest is None:  # known before the cache is built
            n, k = len(self.image_dataset), self.num_views
        else:
            n, k = self.manifest['num_images'], self.manifest['num_views']
        return n * k if self.views == 'all' else n

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_array'] = None  # each worker opens its own memory map
        return state

    def _latents(self) -> np.ndarray:
        if self._array is None or self._pid != os.getpid():
            self._array = np.load(self.latents_path, mmap_mode='r')
            self._pid = os.getpid()
        return self._array

    def get_data_info(self, idx: int) -> dict:
        """``source_idx``, ``view`` and ``row`` of item ``idx`` (a
        ``'random'`` view is drawn here)."""
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} '
                             'latents')
        k = self.manifest['num_views']
        if self.views == 'all':
            source, view = divmod(idx, k)
        else:
            source = idx
            view = (int(np.random.randint(k)) if self.views == 'random' else
                    self.views)
        return dict(sample_idx=idx, source_idx=source, view=view,
                    row=source * k + view)

    def prepare_data(self, idx: int) -> dict:
        """Read one latent as float32 and pack it (or, encoding on the fly,
        return the image dataset's item).

        Args:
            idx (int): Index of the item.

        Returns:
            dict: ``inputs`` ``(d, h, w)`` float32 and ``data_samples``.
        """
        if self.encode_on_the_fly:  # the same items as the cache's rows
            if idx < 0:
                idx += len(self)
            if self.views == 'all':
                idx //= self.num_views
            return self.image_dataset[idx]
        if self.manifest is None:
            raise RuntimeError(
                'LatentCacheDataset: the latent cache is not built yet. '
                'LatentCacheHook (default_hooks.latent_cache in '
                'configs/_base_/default_runtime.py) builds it at the start of '
                "training with the model's projector; outside a Runner call "
                'dataset.prepare(projector, data_preprocessor) first.')
        from mmpretrain.structures import DataSample
        info = self.get_data_info(idx)
        latent = np.array(self._latents()[info['row']], dtype=np.float32)
        flip = self.flip_prob > 0 and np.random.rand() < self.flip_prob
        if flip:
            latent = np.ascontiguousarray(latent[:, :, ::-1])
        sample = DataSample(
            metainfo=dict(
                sample_idx=info['sample_idx'],
                source_idx=info['source_idx'],
                view=info['view'],
                flip=bool(flip),
                img_shape=tuple(self.manifest['image_size']),
                input_type='latent',
                latent_source=self.manifest['projector']))
        return dict(inputs=torch.from_numpy(latent), data_samples=sample)
