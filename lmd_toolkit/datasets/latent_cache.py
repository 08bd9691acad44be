"""Latents of a dataset encoded once by the frozen projector, read back for
training.

The official LMD code re-encodes every image at every iteration; with a cache
the projector runs once per (image, view) and training reads
``(d, h, w)`` latents from a memory-mapped array. A cache folder holds

* ``latents.npy``: ``(N * K, d, h, w)`` float16 / float32, row
  ``source_index * K + view`` (image-major);
* ``manifest.json``: what made it (projector and its checkpoint hash, scale
  factor, dataset, pipeline, views, dtype) and how far writing got.

:func:`write_latent_cache` writes or resumes a cache (the CLI is
``tools/misc/cache_latents.py``); :class:`LatentCacheDataset` serves it;
:func:`check_latent_source` is what ``LatentMaskingDiffusion`` calls to refuse
latents of another projector. See docs/en/latent_cache.md.
"""
import copy
import datetime
import hashlib
import json
import math
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from numpy.lib.format import open_memmap

from lmd_toolkit.registry import DATASETS

MANIFEST_FILE = 'manifest.json'
LATENTS_FILE = 'latents.npy'
FORMAT_VERSION = 1
DTYPES = dict(fp16=np.float16, fp32=np.float32)
# Fields of a projector fingerprint that must match between a cache and the
# model that trains on it (the checkpoint path may differ: its hash decides).
CHECKED_FIELDS = ('type', 'preset', 'arch', 'options', 'checkpoint_sha256',
                  'scale_factor')

# (absolute path, size, mtime) -> SHA-256, so a checkpoint is hashed once
# per process.
_SHA256_CACHE: Dict[Tuple[str, int, float], str] = {}


class LatentCacheMismatchError(ValueError):
    """A latent cache does not fit the projector or the request."""


# ------------------------------------------------------------ fingerprint
def checkpoint_sha256(path: str) -> str:
    """SHA-256 of a checkpoint file, or of every file of a folder (diffusers
    format: relative paths and contents, in sorted order)."""
    if not osp.exists(path):
        raise FileNotFoundError(f'Projector checkpoint not found: {path}')
    path = osp.abspath(path)
    if osp.isdir(path):
        files = sorted(
            osp.join(root, name) for root, _, names in os.walk(path)
            for name in names)
    else:
        files = [path]
    stats = [os.stat(f) for f in files]
    key = (path, sum(s.st_size for s in stats),
           max((s.st_mtime for s in stats), default=0.0))
    if key in _SHA256_CACHE:
        return _SHA256_CACHE[key]
    digest = hashlib.sha256()
    for name in files:
        if osp.isdir(path):
            digest.update(osp.relpath(name, path).encode() + b'\0')
        with open(name, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    _SHA256_CACHE[key] = digest.hexdigest()
    return _SHA256_CACHE[key]


def _projector_checkpoint(projector: torch.nn.Module) -> Optional[str]:
    """The weights file of a projector: ``checkpoint=`` or a ``Pretrained``
    ``init_cfg``; None for random / parameter-free projectors."""
    path = getattr(projector, 'checkpoint', None)
    init_cfg = getattr(projector, 'init_cfg', None)
    if path is None and isinstance(init_cfg, dict) and \
            init_cfg.get('type') == 'Pretrained':
        path = init_cfg.get('checkpoint')
    return path


def projector_fingerprint(projector: torch.nn.Module) -> dict:
    """What determines a projector's latents, as JSON-ready values.

    Returns:
        dict: ``type`` (class name), ``preset`` (name, ``'custom'`` or None),
        ``arch`` (resolved architecture or None), ``options``
        (``sample_posterior`` / ``latent`` when the class has them),
        ``checkpoint`` (path or None), ``checkpoint_sha256`` (None without a
        checkpoint), ``scale_factor`` (the value in use; None while an
        ``'auto'`` factor is not calibrated) and ``scale_factor_mode``
        (``'fixed'`` or ``'auto'``).
    """
    options = {
        name: getattr(projector, name)
        for name in ('sample_posterior', 'latent')
        if hasattr(projector, name)
    }
    path = _projector_checkpoint(projector)
    auto = bool(getattr(projector, 'auto_scale', False))
    scale = float(projector.scale_factor)
    fingerprint = dict(
        type=type(projector).__name__,
        preset=getattr(projector, 'preset', None),
        arch=getattr(projector, 'arch', None),
        options=options,
        checkpoint=path,
        checkpoint_sha256=None if path is None else checkpoint_sha256(path),
        scale_factor=None if auto and scale <= 0 else scale,
        scale_factor_mode='auto' if auto else 'fixed')
    return json.loads(json.dumps(fingerprint))  # tuples -> lists


def _same(field: str, a, b) -> bool:
    if field == 'scale_factor' and a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-6)
    return a == b


def check_latent_source(projector: torch.nn.Module, source: dict,
                        where: str = 'latent cache') -> None:
    """Raise unless ``source`` (a cache's projector fingerprint) matches
    ``projector``.

    An ``'auto'`` scale factor of ``projector`` that is not calibrated yet
    takes the cache's value (logged): the cache was made with it.

    Raises:
        LatentCacheMismatchError: naming each differing field with the
            cache's and the projector's value.
    """
    if getattr(projector, 'auto_scale', False) and \
            not projector.is_calibrated() and \
            source.get('scale_factor') is not None:
        projector.scale_factor.fill_(float(source['scale_factor']))
        print_log(
            f"{type(projector).__name__}: scale_factor='auto' set to "
            f"{source['scale_factor']:g}, the value the {where} was encoded "
            'with.',
            logger='current')
    own = projector_fingerprint(projector)
    wrong = [(f, source.get(f), own.get(f)) for f in CHECKED_FIELDS
             if not _same(f, source.get(f), own.get(f))]
    if wrong:
        lines = '\n'.join(f'  {f}: {where} has {a!r}, the model\'s projector '
                          f'has {b!r}' for f, a, b in wrong)
        raise LatentCacheMismatchError(
            f'The {where} was encoded by another projector than the '
            f'model\'s:\n{lines}\nTrain with the projector config the cache '
            f"was made with (its manifest's 'projector' entry) or rebuild the "
            'cache with tools/misc/cache_latents.py and this config.')


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


# ---------------------------------------------------------------- writing
def read_manifest(cache_dir: str) -> dict:
    """The manifest of a cache folder (error naming the folder if absent)."""
    path = osp.join(cache_dir, MANIFEST_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{cache_dir} is not a latent cache: {MANIFEST_FILE} is missing. '
            'Make one with tools/misc/cache_latents.py CONFIG --out '
            f'{cache_dir}.')
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


def _request_differences(old: dict, new: dict) -> List[str]:
    """Fields of two manifests that must agree for a resume / reuse."""
    out = []
    for key in ('dataset', 'pipeline', 'num_images', 'num_views', 'dtype',
                'view_seed', 'image_size', 'latent_shape'):
        if old.get(key) != new.get(key):
            out.append(f'{key}: existing {old.get(key)!r}, requested '
                       f'{new.get(key)!r}')
    old_p, new_p = old.get('projector', {}), new.get('projector', {})
    for key in CHECKED_FIELDS + ('scale_factor_mode', ):
        if key == 'scale_factor' and new_p.get('scale_factor_mode') == 'auto':
            continue  # computed from the first chunk; the old value is kept
        if not _same(key, old_p.get(key), new_p.get(key)):
            out.append(f'projector.{key}: existing {old_p.get(key)!r}, '
                       f'requested {new_p.get(key)!r}')
    return out


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
    """Encode every image of a dataset ``num_views`` times into ``out_dir``.

    Creates, resumes, or (when complete) leaves alone the cache; see
    docs/en/latent_cache.md.

    Args:
        projector_cfg (dict): Projector config (built, ``init_weights()`` -
            which loads its checkpoint - and frozen).
        dataset_cfg (dict): Image dataset config with its pipeline (ending in
            ``PackInputs``).
        out_dir (str): Cache folder (created; must be new, empty, or a cache
            of the same request).
        num_views (int): Augmented views per image (K). Defaults to 1.
        dtype (str): 'fp16' or 'fp32' storage. Defaults to 'fp16'.
        batch_size (int): Images per encode call = rows per flushed chunk.
            Defaults to 16.
        seed (int): Seed of the view augmentations (:func:`view_seed`).
            Defaults to 0.
        data_preprocessor_cfg (dict, optional): Maps packed uint8 images to
            the projector's [-1, 1]. Defaults to ``LMDDataPreprocessor``.
        force (bool): Recompute a complete cache or replace another request's
            cache in ``out_dir``. Defaults to False.
        max_chunks (int, optional): Stop after this many chunks (an
            interruption, for tests of resuming). Defaults to None.
        config_file (str, optional): Recorded in the manifest.

    Returns:
        dict: The manifest as written.
    """
    from lmd_toolkit.registry import MODELS
    from lmd_toolkit.version import __version__
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be 'fp16' or 'fp32', got {dtype!r}.")
    if not isinstance(num_views, int) or num_views < 1:
        raise ValueError(f'num_views must be a positive int, got '
                         f'{num_views!r}.')
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
    if dataset_cfg.get('type') == 'LatentCacheDataset':
        raise ValueError(
            'The dataset to cache is a LatentCacheDataset already; pass the '
            'image config the cache is made from.')
    projector = MODELS.build(copy.deepcopy(projector_cfg))
    projector.init_weights()
    projector.freeze()
    preprocessor = MODELS.build(
        copy.deepcopy(data_preprocessor_cfg
                      or dict(type='LMDDataPreprocessor')))
    dataset = DATASETS.build(copy.deepcopy(dataset_cfg))
    num_images = len(dataset)
    if num_images == 0:
        raise ValueError(f'The dataset {dataset_cfg.get("type")} is empty.')

    def images(rows: range) -> torch.Tensor:
        items = [
            load_view(dataset, r // num_views, r % num_views, seed)['inputs']
            for r in rows
        ]
        return preprocessor(dict(inputs=[torch.as_tensor(i)
                                          for i in items]))['inputs']

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
    manifest = json.loads(json.dumps(dict(
        format_version=FORMAT_VERSION,
        state='in_progress',
        num_done=0,
        num_rows=num_images * num_views,
        num_images=num_images,
        num_views=num_views,
        row_order='row = source_index * num_views + view',
        view_seed=seed,
        latent_shape=latent_shape,
        dtype=np.dtype(DTYPES[dtype]).name,
        image_size=[height, width],
        projector=projector_fingerprint(projector),
        projector_config=projector_cfg,
        dataset=dict(type=dataset_cfg.get('type'), args=args),
        pipeline=list(dataset_cfg.get('pipeline', [])),
        config=config_file,
        chunk_rows=batch_size,
        toolkit_version=__version__,
        created=_now()), default=str))

    latents_path = osp.join(out_dir, LATENTS_FILE)
    resume = False
    if osp.isdir(out_dir) and os.listdir(out_dir):
        if not osp.isfile(osp.join(out_dir, MANIFEST_FILE)):
            raise FileExistsError(
                f'{out_dir} is not empty and holds no {MANIFEST_FILE}: it is '
                'not a latent cache. Choose a new or empty folder with --out.')
        old = read_manifest(out_dir)
        diff = _request_differences(old, manifest)
        if diff and not force:
            raise LatentCacheMismatchError(
                f'{out_dir} holds a cache of another request:\n  ' +
                '\n  '.join(diff) + '\nChoose another --out folder, or pass '
                '--force to replace that cache.')
        if not diff and old.get('state') == 'complete' and not force:
            print_log(f'{out_dir}: the cache is complete ({old["num_rows"]} '
                      'latents); nothing to do (pass --force to recompute).',
                      logger='current')
            return old
        if not force and osp.isfile(latents_path):
            resume = True
            manifest['created'] = old['created']
            manifest['num_done'] = int(old['num_done'])
            manifest['projector']['scale_factor'] = \
                old['projector']['scale_factor']
    os.makedirs(out_dir, exist_ok=True)

    np_dtype = DTYPES[dtype]
    shape = (manifest['num_rows'], *latent_shape)
    if resume:
        array = np.load(latents_path, mmap_mode='r+')
        if array.shape != shape or array.dtype != np_dtype:
            raise LatentCacheMismatchError(
                f'{latents_path} is {array.shape} {array.dtype}, the '
                f'manifest says {shape} {np.dtype(np_dtype).name}: the cache '
                'is damaged; pass --force to rebuild it.')
        scale = manifest['projector']['scale_factor']
        if getattr(projector, 'auto_scale', False) and scale is not None:
            projector.scale_factor.fill_(float(scale))
        print_log(f'{out_dir}: resuming at latent {manifest["num_done"]} of '
                  f'{manifest["num_rows"]}.', logger='current')
    else:
        for name in (MANIFEST_FILE, LATENTS_FILE):  # --force: start afresh
            if osp.isfile(osp.join(out_dir, name)):
                os.remove(osp.join(out_dir, name))
        array = open_memmap(latents_path, mode='w+', dtype=np_dtype,
                            shape=shape)
        _write_manifest(out_dir, manifest)

    done, total = manifest['num_done'], manifest['num_rows']
    bar = ProgressBar(total - done)
    chunks = 0
    while done < total:
        if max_chunks is not None and chunks >= max_chunks:
            print_log(f'\nStopped after {chunks} chunks ({done}/{total}); '
                      'rerun the same command to resume.', logger='current')
            break
        rows = range(done, min(done + batch_size, total))
        z = projector.encode(images(rows)).cpu().numpy()
        stored = z.astype(np_dtype)
        if not np.isfinite(stored).all():
            raise ValueError(
                f'Latents of rows {rows.start}-{rows.stop - 1} are not finite '
                f'in {np.dtype(np_dtype).name} (max |z| = '
                f'{np.abs(z).max():.4g}); use --dtype fp32.')
        array[rows.start:rows.stop] = stored
        array.flush()
        done = rows.stop
        chunks += 1
        manifest['num_done'] = done
        manifest['projector']['scale_factor'] = float(projector.scale_factor)
        if done == total:
            manifest['state'] = 'complete'
        _write_manifest(out_dir, manifest)
        bar.update(len(rows))
    del array
    return manifest


# ---------------------------------------------------------------- reading
@DATASETS.register_module()
class LatentCacheDataset(BaseDataset):
    """Latents written by ``tools/misc/cache_latents.py``, read from a
    memory map (opened lazily in each process / dataloader worker).

    Each item is ``dict(inputs=Tensor (d, h, w) float32, data_samples=
    DataSample)`` whose metainfo holds ``sample_idx``, ``source_idx`` (index
    of the image in the cached dataset), ``view``, ``flip``, ``img_shape``,
    ``input_type='latent'`` (tells ``LMDDataPreprocessor`` and
    ``LatentMaskingDiffusion`` to skip rescaling and encoding) and
    ``latent_source`` (the manifest's projector fingerprint, which the model
    checks against its own projector).

    Args:
        cache_dir (str): The cache folder (``manifest.json`` +
            ``latents.npy``); it must be complete.
        views (str | int): ``'all'``: every (image, view) row is an item
            (N * K items); ``'random'``: N items, each draws one of its K
            views at random per access; an int: that view of every image.
            Defaults to 'all'.
        flip_prob (float): Probability of flipping a latent horizontally.
            Opt-in: for a KL / VQ projector the flipped latent is close to,
            but not exactly, the latent of the flipped image. Defaults to 0.0.
        test_mode (bool): mmengine's test mode. Defaults to False.
    """

    def __init__(self,
                 cache_dir: str,
                 views: Union[str, int] = 'all',
                 flip_prob: float = 0.0,
                 test_mode: bool = False) -> None:
        self.cache_dir = cache_dir
        self.manifest = read_manifest(cache_dir)
        m = self.manifest
        if m.get('format_version') != FORMAT_VERSION:
            raise ValueError(f'{cache_dir}: cache format '
                             f'{m.get("format_version")}, this toolkit reads '
                             f'{FORMAT_VERSION}; rebuild the cache.')
        if m.get('state') != 'complete':
            raise ValueError(
                f'{cache_dir}: the cache is incomplete ({m.get("num_done")} '
                f'of {m.get("num_rows")} latents); rerun '
                f'tools/misc/cache_latents.py {m.get("config") or "CONFIG"} '
                f'--out {cache_dir} to finish it.')
        k = m['num_views']
        if views not in ('all', 'random') and not (
                isinstance(views, int) and 0 <= views < k):
            raise ValueError(f"views must be 'all', 'random' or a view index "
                             f'in [0, {k}), got {views!r}.')
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f'flip_prob must be in [0, 1], got {flip_prob}.')
        self.views = views
        self.flip_prob = flip_prob
        self.latents_path = osp.join(cache_dir, LATENTS_FILE)
        shape = (m['num_rows'], *m['latent_shape'])
        array = np.load(self.latents_path, mmap_mode='r')
        if array.shape != shape or array.dtype.name != m['dtype']:
            raise ValueError(f'{self.latents_path} is {array.shape} '
                             f'{array.dtype}, the manifest says {shape} '
                             f"{m['dtype']}; the cache is damaged.")
        del array
        self._array = None
        self._pid = None
        super().__init__(pipeline=[], test_mode=test_mode,
                         serialize_data=False, lazy_init=True)
        self._fully_initialized = True  # items are computed, not listed

    def full_init(self) -> None:
        """Nothing to load: items are index arithmetic on the memory map."""
        self._fully_initialized = True

    def __len__(self) -> int:
        m = self.manifest
        return m['num_rows'] if self.views == 'all' else m['num_images']

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
        """Read one latent as float32 and pack it.

        Args:
            idx (int): Index of the item.

        Returns:
            dict: ``inputs`` ``(d, h, w)`` float32 and ``data_samples``.
        """
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
