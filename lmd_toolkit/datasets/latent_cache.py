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
import contextlib
import copy
import datetime
import errno
import hashlib
import json
import os
import os.path as osp
import random
import shutil
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
from lmd_toolkit.registry import DATASETS, MODELS
from lmd_toolkit.utils.fileio import UnreadableFileError, atomic_write
from lmd_toolkit.utils.rng import preserved_rng_state
from lmd_toolkit.version import __version__

__all__ = [
    'LatentCacheDataset', 'LatentCacheMismatchError', 'build_latent_cache',
    'write_latent_cache', 'read_manifest', 'load_view', 'view_seed',
    'check_latent_cache_config', 'LatentCacheSpaceError',
    'NonFiniteLatentError', 'RandomProjectorError', 'UnreadableFileError'
]

MANIFEST_FILE = 'manifest.json'
LATENTS_FILE = 'latents.npy'
PROGRESS_FILE = 'progress.npy'
FORMAT_VERSION = 1
DTYPES = dict(fp16=np.float16, fp32=np.float32)
# Manifest fields that must agree for a resume / reuse.
REQUEST_FIELDS = ('dataset', 'pipeline', 'num_images', 'num_views', 'dtype',
                  'view_seed', 'image_size', 'latent_shape')
# Manifest fields a reader needs.
MANIFEST_FIELDS = ('format_version', 'state', 'num_rows', 'num_images',
                   'num_views', 'latent_shape', 'dtype', 'image_size',
                   'projector')
CLI = 'tools/misc/cache_latents.py'


# ----------------------------------------------------------------- errors
class LatentCacheSpaceError(OSError):
    """The disk of a cache folder has too little free space for the cache
    (``errno`` is ``ENOSPC``)."""

    def __init__(self, folder: str, needed: Optional[int],
                 free: Optional[int], what: str = 'the latent cache') -> None:
        self.folder, self.needed, self.free = folder, needed, free
        self.what = what
        have = 'the free space is unknown' if free is None else \
            f'{_size(free)} ({free} bytes) are free'
        need = (f'writing {what} failed: the disk is full' if needed is None
                else f'{what} needs {_size(needed)} ({needed} bytes)')
        super().__init__(
            errno.ENOSPC,
            f'Not enough free disk space in the latent cache folder '
            f'{folder!r}: {need}, {have}. Free space on that disk, or set '
            'cache_dir= of LatentCacheDataset (--out of '
            'tools/misc/cache_latents.py) to a folder on a larger disk; '
            'rerunning then resumes where it stopped.')

    def __str__(self) -> str:
        return self.strerror

    def __reduce__(self):  # picklable, for the broadcast to other ranks
        return type(self), (self.folder, self.needed, self.free, self.what)


class NonFiniteLatentError(ValueError):
    """The projector produced NaN / Inf latents while a cache was built."""


class RandomProjectorError(ValueError):
    """A latent cache would be made by (or trained from) a projector whose
    weights were never loaded."""


def _size(n: int) -> str:
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if abs(n) < 1024 or unit == 'GiB':
            return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
        n /= 1024
    return f'{n:.1f} TiB'


def _rebuild_fix(cache_dir: str, config: Optional[str] = None) -> str:
    return (f'Delete the folder {cache_dir} and rerun {CLI} '
            f'{config or "CONFIG"}, or let training rebuild it (a '
            'LatentCacheDataset with the image dataset, dataset=...).')


def _writing(cache_dir: str, what: str):
    """Turn a full disk (ENOSPC / EDQUOT) in a write into
    :class:`LatentCacheSpaceError` naming ``cache_dir``."""

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except OSError as e:
            if isinstance(e, LatentCacheSpaceError) or e.errno not in (
                    errno.ENOSPC, errno.EDQUOT):
                raise
            raise LatentCacheSpaceError(cache_dir, None, _free(cache_dir),
                                        what) from e
    return guard()


def _free(folder: str) -> Optional[int]:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _reserve(path: str, folder: str) -> None:
    """Allocate every block of ``path`` (``posix_fallocate``), so that the
    memory-mapped writes into it cannot fail (SIGBUS) on a full disk."""
    size = osp.getsize(path)
    fallocate = getattr(os, 'posix_fallocate', None)
    if fallocate is None:
        return  # not on this OS: the free-space check is all there is
    fd = os.open(path, os.O_RDWR)
    try:
        fallocate(fd, 0, size)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise LatentCacheSpaceError(folder, size, _free(folder),
                                        f'{LATENTS_FILE}') from e
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


def is_random_projector(fingerprint: dict) -> bool:
    """Whether a projector fingerprint says no weights were loaded: no
    checkpoint (``checkpoint_sha256`` None) and not the identity (which has
    no weights)."""
    return fingerprint.get('checkpoint_sha256') is None and \
        fingerprint.get('type') != 'IdentityProjector'


def _random_projector_error(projector_type: str, where: str,
                            allow: str) -> RandomProjectorError:
    return RandomProjectorError(
        f'{where} would hold latents of a randomly initialised projector: '
        f'model.projector ({projector_type}) has no weights loaded '
        '(checkpoint=None). Set the config key model.projector.checkpoint '
        'to the projector\'s weights (e.g. --cfg-options '
        'model.projector.checkpoint=PATH), or, to use a random projector on '
        f'purpose (tests, ablations), {allow}.')


# ------------------------------------------------------------------ views
def view_seed(seed: int, index: int, view: int) -> int:
    """Seed of the augmentation of ``view`` of image ``index``."""
    state = np.random.SeedSequence([seed, index, view]).generate_state(1)
    return int(state[0])


def load_view(dataset,
              index: int,
              view: int,
              seed: int = 0,
              strict: bool = False) -> dict:
    """``dataset[index]`` with ``random``, ``numpy`` and ``torch`` seeded by
    :func:`view_seed`, so a view's random augmentation is the same in every
    run; the global random states are restored afterwards.

    Args:
        dataset: The image dataset.
        index (int): Index of the image.
        view (int): Index of the view.
        seed (int): Seed of the view augmentations. Defaults to 0.
        strict (bool): Raise an error naming the image when the dataset
            cannot serve it, instead of mmengine's training-time refetch of
            another index (a cache row must be its own image).
            Defaults to False.

    Returns:
        dict: The dataset's item.
    """
    with preserved_rng_state():
        s = view_seed(seed, index, view)
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)
        return _strict_item(dataset, index) if strict else dataset[index]


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
    try:
        with open(path, encoding='utf-8') as f:
            manifest = json.load(f)
    except (ValueError, OSError) as e:  # JSONDecodeError, UnicodeError
        problem = 'is empty (0 bytes)' if osp.getsize(path) == 0 else \
            f'is truncated or not valid JSON ({e})'
        raise UnreadableFileError(path, 'Latent cache manifest', problem,
                                  _rebuild_fix(cache_dir)) from e
    missing = [k for k in MANIFEST_FIELDS if k not in manifest] if \
        isinstance(manifest, dict) else list(MANIFEST_FIELDS)
    if missing:
        raise UnreadableFileError(
            path, 'Latent cache manifest',
            f'lacks the fields {", ".join(missing)}',
            _rebuild_fix(cache_dir))
    return manifest


def _write_manifest(cache_dir: str, manifest: dict) -> None:
    """Write atomically (:func:`atomic_write`): a crash or a full disk
    leaves the old one."""
    manifest['updated'] = _now()
    with _writing(cache_dir, MANIFEST_FILE), \
            atomic_write(osp.join(cache_dir, MANIFEST_FILE)) as f:
        json.dump(manifest, f, indent=2)


def _save_progress(cache_dir: str, done: np.ndarray) -> None:
    """Create ``progress.npy`` atomically. Chunks are then marked in place
    through a memory map (one byte of an allocated page, by the rank that
    wrote the chunk: every rank keeps the same file open)."""
    with _writing(cache_dir, PROGRESS_FILE), \
            atomic_write(osp.join(cache_dir, PROGRESS_FILE), 'wb') as f:
        np.save(f, done.astype(np.uint8))


def _load_array(path: str, role: str, cache_dir: str, mmap_mode=None,
                config: Optional[str] = None) -> np.ndarray:
    """``np.load`` with one named error for a missing / truncated file."""
    fix = _rebuild_fix(cache_dir, config)
    if not osp.isfile(path):
        raise UnreadableFileError(path, role, 'does not exist', fix)
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        problem = 'is empty (0 bytes)' if osp.getsize(path) == 0 else \
            f'is truncated or not a .npy array ({e})'
        raise UnreadableFileError(path, role, problem, fix) from e


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
                       extra: Optional[dict] = None,
                       allow_random_projector: bool = False) -> dict:
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
        allow_random_projector (bool): Build even if ``projector`` has no
            weights loaded (no checkpoint; :func:`is_random_projector`).
            Benchmarks that only time the encoder pass True explicitly.
            Defaults to False.

    Returns:
        dict: The manifest as written.

    Raises:
        RandomProjectorError: ``allow_random_projector=False`` and the
            projector has no weights.
        LatentCacheSpaceError: The disk of ``out_dir`` cannot hold the
            cache (checked, then reserved, before anything is encoded).
        NonFiniteLatentError: A chunk's latents hold NaN / Inf (nothing of
            it is marked written).
        UnreadableFileError: A file of an existing cache is damaged.
    """
    _check_request(num_views, dtype, batch_size)
    fingerprint = projector.fingerprint()
    if not allow_random_projector and is_random_projector(fingerprint):
        raise _random_projector_error(
            fingerprint['type'], f'The latent cache {out_dir}',
            'set allow_random_projector=True (in the LatentCacheDataset '
            'config; --allow-random-projector for '
            'tools/misc/cache_latents.py)')
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
        projector=fingerprint,
        dataset=dict(type=dataset_cfg.get('type'), args=args),
        pipeline=list(dataset_cfg.get('pipeline', [])),
        chunk_rows=batch_size,
        encode_seconds=0.0,
        toolkit_version=__version__,
        created=_now(),
        **(extra or {})))

    # Rank 0 decides (new / resume / complete / refuse) and creates the
    # files; the others follow its decision.
    def probe() -> None:
        """Before an existing cache is replaced: fail on NaN / Inf latents
        of the first chunk while the old files are still there."""
        rows = chunk_rows(0)
        with torch.no_grad():
            z = projector._encode(images(rows).float()).cpu().numpy()
        _check_finite(z, z, rows, out_dir, fingerprint, dtype)

    decision = [None]
    if rank == 0:
        try:
            decision[0] = _prepare_files(out_dir, manifest, force,
                                         num_chunks, probe)
        except Exception as error:  # every rank raises the same error
            decision[0] = dict(error=error)
    if world_size > 1:
        mine_ = decision[0]
        if rank == 0 and 'error' in mine_:
            decision[0] = dict(error=_picklable(mine_['error']))
        broadcast_object_list(decision, src=0)
        if rank == 0:
            decision[0] = mine_
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

    latents_path = osp.join(out_dir, LATENTS_FILE)
    array = _load_array(latents_path, 'Latent cache data', out_dir, 'r+')
    progress = _load_array(osp.join(out_dir, PROGRESS_FILE),
                           'Latent cache progress record', out_dir, 'r+')
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
        _check_finite(z, stored, rows, out_dir, fingerprint, dtype)
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
        done = _load_array(osp.join(out_dir, PROGRESS_FILE),
                           'Latent cache progress record',
                           out_dir).astype(bool)
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


def _strict_item(dataset, index: int) -> dict:
    """``dataset[index]`` without mmengine's refetch of another index."""
    if not (hasattr(dataset, 'prepare_data') and
            hasattr(dataset, 'full_init')):
        return dataset[index]
    if not getattr(dataset, '_fully_initialized', True):
        dataset.full_init()
    data = dataset.prepare_data(index)
    if data is not None:
        return data
    try:
        path = dataset.get_data_info(index).get('img_path')
    except Exception:
        path = None
    reason = getattr(dataset, 'unreadable', {}).get(path)
    raise RuntimeError(
        f'{type(dataset).__name__}: image file {path!r} (index {index}) '
        f'cannot be read{f" ({reason})" if reason else ""}; a latent cache '
        'needs every image (row = image * num_views + view), so another '
        'image is not drawn in its place. Replace or delete the file, then '
        'rerun (the build resumes).')


def _picklable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling, else a RuntimeError of its text."""
    import pickle
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f'{type(error).__name__}: {error}')


class _ViewRows(torch.utils.data.Dataset):
    """Row ``r`` of a cache: the packed image of view ``r % K`` of image
    ``r // K``, augmented with its seeded randomness."""

    def __init__(self, dataset, num_views: int, seed: int) -> None:
        self.dataset, self.num_views, self.seed = dataset, num_views, seed

    def __len__(self) -> int:
        return len(self.dataset) * self.num_views

    def __getitem__(self, row: int):
        index, view = divmod(row, self.num_views)
        return load_view(self.dataset, index, view, self.seed,
                         strict=True)['inputs']


def _check_finite(z: np.ndarray, stored: np.ndarray, rows: range,
                  out_dir: str, fingerprint: dict, dtype: str) -> None:
    """Raise :class:`NonFiniteLatentError` unless every stored latent of a
    chunk is finite."""
    bad = ~np.isfinite(stored.reshape(len(stored), -1)).all(axis=1)
    if not bad.any():
        return
    which = [rows.start + int(i) for i in np.flatnonzero(bad)]
    shown = ', '.join(map(str, which[:8])) + (', ...' if len(which) > 8
                                               else '')
    who = (f"projector {fingerprint.get('type')} (preset "
           f"{fingerprint.get('preset')!r}, checkpoint "
           f"{fingerprint.get('checkpoint')!r}, sha256 "
           f"{fingerprint.get('checkpoint_sha256')})")
    if np.isfinite(z).all():  # finite in fp32, too large for fp16
        fix = (f'the latents overflow {dtype} (max |z| = '
               f'{float(np.abs(z).max()):.4g}): use dtype fp32')
    else:
        fix = ('the projector itself produced NaN / Inf: check its weights '
               '(model.projector.checkpoint) and the images of these rows')
    raise NonFiniteLatentError(
        f'Latent cache {out_dir}: rows {shown} (of rows '
        f'{rows.start}-{rows.stop - 1}; row = image * num_views + view) hold '
        f'NaN / Inf latents of the {who}; nothing of this chunk was '
        f'written. Fix: {fix}, then rerun (the build resumes).')


def _cache_bytes(shape: tuple, np_dtype: np.dtype) -> int:
    """Bytes of a ``.npy`` file of ``shape`` (header of at most 4 KiB)."""
    return int(np.prod(shape)) * np.dtype(np_dtype).itemsize + 4096


def _allocated(path: str) -> int:
    try:
        st = os.stat(path)
    except OSError:
        return 0
    return getattr(st, 'st_blocks', 0) * 512 or st.st_size


def _prepare_files(out_dir: str, manifest: dict, force: bool,
                   num_chunks: int, probe=None) -> dict:
    """Rank 0: compare with what ``out_dir`` holds and create or reopen the
    files. Returns ``manifest`` (the one to continue), ``resume`` and
    ``complete``.

    An incomplete cache of the same request whose ``latents.npy`` or
    ``progress.npy`` is damaged is rebuilt (the manifest says nothing was
    finished for good); a damaged manifest, or a damaged complete cache, is
    an error naming the file. Nothing is deleted before the free space is
    checked and, when a cache is replaced, ``probe()`` (the first chunk
    encodes to finite latents) has passed.
    """
    latents_path = osp.join(out_dir, LATENTS_FILE)
    progress_path = osp.join(out_dir, PROGRESS_FILE)
    np_dtype = np.dtype(manifest['dtype'])
    shape = (manifest['num_rows'], *manifest['latent_shape'])
    replacing = False
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
        damaged = None
        if not force and osp.isfile(latents_path):
            try:
                array = _load_array(latents_path, 'Latent cache data',
                                    out_dir, 'r')
                if array.shape != shape or array.dtype != np_dtype:
                    damaged = (f'{latents_path} is {array.shape} '
                               f'{array.dtype}, the manifest says {shape} '
                               f'{np_dtype.name}')
                del array
            except UnreadableFileError as e:
                damaged = str(e)
            if damaged is None and osp.isfile(progress_path):
                try:
                    done = _load_array(progress_path,
                                       'Latent cache progress record',
                                       out_dir)
                    if done.shape != (num_chunks, ):
                        raise ValueError(f'{done.shape} != ({num_chunks},)')
                except (UnreadableFileError, ValueError) as e:
                    print_log(f'{out_dir}: {PROGRESS_FILE} is damaged ({e}); '
                              'every chunk is encoded again.',
                              logger='current', level=30)
                    _save_progress(out_dir, np.zeros(num_chunks, np.uint8))
                    old['num_done'] = 0
            elif damaged is None:  # a cache of an older build
                done = np.zeros(num_chunks, np.uint8)
                done[:int(old['num_done']) // manifest['chunk_rows']] = 1
                _save_progress(out_dir, done)
        if not force and osp.isfile(latents_path) and damaged is None:
            _reserve(latents_path, out_dir)  # a sparse file of old builds
            for key in ('created', 'num_done', 'encode_seconds'):
                manifest[key] = old.get(key, manifest[key])
            manifest['projector']['scale_factor'] = \
                old['projector']['scale_factor']
            return dict(manifest=manifest, resume=True, complete=False)
        if damaged is not None:
            print_log(f'{out_dir}: the incomplete cache is damaged '
                      f'({damaged}); building it afresh.', logger='current',
                      level=30)
        replacing = True
    with _writing(out_dir, 'the cache folder'):
        os.makedirs(out_dir, exist_ok=True)
    needed = _cache_bytes(shape, np_dtype) + 4096 * 4  # + progress, manifest
    free = _free(out_dir)
    reclaimed = _allocated(latents_path) if replacing else 0
    if free is not None and free + reclaimed < needed:
        raise LatentCacheSpaceError(out_dir, needed, free + reclaimed)
    if replacing and probe is not None and force:
        probe()  # the old cache stays if the new latents are not finite
    for name in (MANIFEST_FILE, LATENTS_FILE, PROGRESS_FILE):  # afresh
        if osp.isfile(osp.join(out_dir, name)):
            os.remove(osp.join(out_dir, name))
    try:
        with _writing(out_dir, LATENTS_FILE):
            array = open_memmap(latents_path, mode='w+', dtype=np_dtype,
                                shape=shape)
            del array
        _reserve(latents_path, out_dir)
        _save_progress(out_dir, np.zeros(num_chunks, np.uint8))
        _write_manifest(out_dir, manifest)
    except BaseException:
        # A new cache that could not be created: leave an empty folder
        # (rerunning starts afresh), never a half-made cache.
        for name in (MANIFEST_FILE, LATENTS_FILE, PROGRESS_FILE):
            if osp.isfile(osp.join(out_dir, name)):
                os.remove(osp.join(out_dir, name))
        raise
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
                       config_file: Optional[str] = None,
                       allow_random_projector: bool = False) -> dict:
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
        allow_random_projector (bool): Build even if ``projector_cfg`` loads
            no weights (see :func:`build_latent_cache`; the CLI passes
            True only with ``--allow-random-projector``). Defaults to False.

    Returns:
        dict: The manifest as written.
    """
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
        extra=dict(projector_config=projector_cfg, config=config_file),
        allow_random_projector=allow_random_projector)


def _latent_cache_configs(dataset, key: str):
    """``(config key, dataset config)`` of every LatentCacheDataset in a
    dataset config and in mmengine's wrappers around it."""
    if not isinstance(dataset, dict):
        return
    kind = str(dataset.get('type', '')).split('.')[-1]
    if kind == 'LatentCacheDataset':
        yield key, dataset
        return
    if isinstance(dataset.get('dataset'), dict):
        yield from _latent_cache_configs(dataset['dataset'], key + '.dataset')
    for i, inner in enumerate(dataset.get('datasets') or []):
        yield from _latent_cache_configs(inner, f'{key}.datasets[{i}]')


def check_latent_cache_config(cfg) -> None:
    """Refuse, before any model is built, a training config that would
    train on latents of a projector without weights.

    Raises when ``train_dataloader.dataset`` (or a dataset inside a wrapper
    of it) is a ``LatentCacheDataset`` that does not encode on the fly and
    has no ``allow_random_projector=True``, while ``model.projector`` is not
    the identity and loads nothing (its ``checkpoint`` is None and no
    ``init_cfg=dict(type='Pretrained', checkpoint=...)``). The same check
    runs at run time in :meth:`LatentCacheDataset.prepare`.

    Args:
        cfg (mmengine.Config | dict): A whole training config.

    Raises:
        RandomProjectorError: Naming the dataset key to set and the
            projector checkpoint key to fill.
    """
    loader = cfg.get('train_dataloader') or {}
    model = cfg.get('model') or {}
    projector = model.get('projector') if isinstance(model, dict) else None
    if not isinstance(loader, dict) or not isinstance(projector, dict):
        return
    kind = str(projector.get('type', '')).split('.')[-1]
    init_cfg = projector.get('init_cfg')
    pretrained = isinstance(init_cfg, dict) and \
        init_cfg.get('type') == 'Pretrained' and init_cfg.get('checkpoint')
    if kind == 'IdentityProjector' or pretrained or \
            projector.get('checkpoint') is not None:
        return
    for key, dataset in _latent_cache_configs(loader.get('dataset'),
                                              'train_dataloader.dataset'):
        if dataset.get('encode_on_the_fly') or \
                dataset.get('allow_random_projector'):
            continue
        raise _random_projector_error(
            kind or 'unknown type', f'{key} (LatentCacheDataset)',
            f'set {key}.allow_random_projector=True')


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
        allow_random_projector (bool): Build (with ``dataset``) a cache with
            a projector that has no weights loaded (``checkpoint=None``, so
            its fingerprint has no ``checkpoint_sha256``; the identity
            projector is never cached and needs no permission). False
            refuses with :class:`RandomProjectorError` in :meth:`prepare`,
            and :func:`check_latent_cache_config` refuses such a config
            before the model is built; set True only for tests and
            ablations. Reading a cache made before by such a projector logs
            a warning. Defaults to False.
        test_mode (bool): mmengine's test mode. Defaults to False.

    Every served latent is checked to be finite (``np.isfinite`` on that
    item): a NaN / Inf row raises :class:`UnreadableFileError` naming the
    file and the row.
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
                 allow_random_projector: bool = False,
                 test_mode: bool = False) -> None:
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f'flip_prob must be in [0, 1], got {flip_prob}.')
        self.flip_prob = flip_prob
        self.views = views
        self.encode_on_the_fly = encode_on_the_fly
        self.allow_random_projector = bool(allow_random_projector)
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
        fix = _rebuild_fix(cache_dir, m.get('config'))
        manifest_path = osp.join(cache_dir, MANIFEST_FILE)
        if m.get('format_version') != FORMAT_VERSION:
            raise ValueError(f'{cache_dir}: cache format '
                             f'{m.get("format_version")}, this toolkit reads '
                             f'{FORMAT_VERSION}; rebuild the cache. {fix}')
        if m.get('state') != 'complete':
            raise ValueError(
                f'{cache_dir}: the cache is incomplete ({m.get("num_done")} '
                f'of {m.get("num_rows")} latents); rerun '
                f'tools/misc/cache_latents.py {m.get("config") or "CONFIG"} '
                f'--out {cache_dir}, or train with a config whose '
                'LatentCacheDataset names the image dataset, to finish it.')
        self._check_views(m['num_views'])
        latents_path = osp.join(cache_dir, LATENTS_FILE)
        try:
            shape = (int(m['num_rows']), *map(int, m['latent_shape']))
        except (TypeError, ValueError) as e:
            raise UnreadableFileError(manifest_path, 'Latent cache manifest',
                                      f'has a bad num_rows / latent_shape '
                                      f'({e})', fix) from e
        array = _load_array(latents_path, 'Latent cache data', cache_dir,
                            'r', m.get('config'))
        if array.shape != shape or array.dtype.name != m['dtype']:
            raise UnreadableFileError(
                latents_path, 'Latent cache data',
                f'is {array.shape} {array.dtype}, the manifest says {shape} '
                f"{m['dtype']} (the cache is damaged)", fix)
        del array
        if is_random_projector(m['projector']) and \
                not self.allow_random_projector:
            print_log(
                f'LatentCacheDataset: {cache_dir} was encoded by a projector '
                f"without weights ({m['projector'].get('type')}, "
                'checkpoint=None); rebuild it with model.projector.checkpoint '
                'set, or set allow_random_projector=True to silence this.',
                logger='current', level=30)
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
        fingerprint = projector.fingerprint()
        if is_random_projector(fingerprint) and \
                not self.allow_random_projector:
            raise _random_projector_error(
                fingerprint['type'], 'LatentCacheDataset (the latent cache of '
                f'{self.dataset_cfg.get("type")})',
                'set allow_random_projector=True in the LatentCacheDataset '
                '(e.g. train_dataloader.dataset.allow_random_projector=True)')
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
                           num_workers=self.num_workers,
                           allow_random_projector=self.allow_random_projector)
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
            self._array = _load_array(self.latents_path, 'Latent cache data',
                                      self.cache_dir, 'r',
                                      self.manifest.get('config'))
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
        if not np.isfinite(latent).all():
            raise UnreadableFileError(
                self.latents_path, 'Latent cache data',
                f"holds NaN / Inf in row {info['row']} (image "
                f"{info['source_idx']}, view {info['view']}; made by an older "
                'version or damaged)',
                _rebuild_fix(self.cache_dir, self.manifest.get('config')))
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
