"""Crops of the real photographs that ship inside pip packages.

No download: scikit-image, scikit-learn and matplotlib each carry a few
photographs in their wheels. The photos are decoded lazily, once per process,
into a module-level cache; ``data_list`` holds only a source key and a crop
box per item, so mmengine's pickling of it stays small.
"""
import zlib
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from PIL import Image

from lmd_toolkit.registry import DATASETS
from .transforms.checks import run_pipeline

# Every usable photo, in a fixed order. Other images of ``skimage.data``
# download on first use and fail offline: never add them here.
SOURCES = (
    'skimage:astronaut',
    'skimage:chelsea',
    'skimage:coffee',
    'skimage:rocket',
    'skimage:hubble_deep_field',
    'skimage:immunohistochemistry',
    'skimage:retina',
    'skimage:stereo_motorcycle',
    'sklearn:china',
    'sklearn:flower',
    'matplotlib:grace_hopper',
)
DEFAULT_VAL_SOURCES = ('skimage:chelsea', 'sklearn:china')
# Crops per split when ``num_crops`` is None.
DEFAULT_NUM_CROPS = dict(train=2048, val=128, all=2176)

# (source key, max_size) -> read-only (H, W, 3) uint8 RGB photo.
_PHOTO_CACHE: Dict[Tuple[str, Optional[int]], np.ndarray] = {}


def _decode_source(key: str) -> np.ndarray:
    """Decode one photo of ``SOURCES`` at its full size."""
    package, name = key.split(':', 1)
    if package == 'skimage':
        from skimage import data
        photo = getattr(data, name)()
        if name == 'stereo_motorcycle':
            # (left view, right view, disparity): keep the left view; the
            # right one is a near-duplicate.
            photo = photo[0]
    elif package == 'sklearn':
        from sklearn.datasets import load_sample_image
        photo = load_sample_image(f'{name}.jpg')
    else:
        from matplotlib import cbook
        path = cbook.get_sample_data(f'{name}.jpg', asfileobj=False)
        with Image.open(path) as img:
            photo = np.asarray(img.convert('RGB'))
    photo = np.asarray(photo)
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f'EmbeddedPhotos: {key} decoded to dtype '
                         f'{photo.dtype} shape {photo.shape}, expected uint8 '
                         '(H, W, 3); the installed package may have changed')
    return photo


def load_photo(key: str, max_size: Optional[int] = None) -> np.ndarray:
    """Return an embedded photo, decoded and scaled once per process.

    Args:
        key (str): One of ``SOURCES``, e.g. ``'skimage:astronaut'``.
        max_size (int, optional): When the photo's longer side exceeds this,
            shrink it (Lanczos, aspect kept) so that side equals it. None
            keeps the full size. Defaults to None.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8 RGB, read-only (it is shared).
    """
    if key not in SOURCES:
        raise KeyError(f'EmbeddedPhotos: unknown source {key!r}; expected '
                       f'one of {list(SOURCES)}')
    cache_key = (key, max_size)
    if cache_key in _PHOTO_CACHE:
        return _PHOTO_CACHE[cache_key]
    if max_size is None:
        photo = _decode_source(key)
    else:
        photo = load_photo(key)
        height, width = photo.shape[:2]
        if max(height, width) > max_size:
            scale = max_size / max(height, width)
            size = (max(1, round(width * scale)),
                    max(1, round(height * scale)))
            photo = np.asarray(
                Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
    photo = np.ascontiguousarray(photo)
    photo.setflags(write=False)
    _PHOTO_CACHE[cache_key] = photo
    return photo


def _resolve_source(name: str) -> str:
    """Map ``'chelsea'`` or ``'skimage:chelsea'`` to its key in SOURCES."""
    if name in SOURCES:
        return name
    matches = [key for key in SOURCES if key.split(':', 1)[1] == name]
    if len(matches) != 1:
        raise ValueError(f'EmbeddedPhotos: unknown source {name!r} in '
                         f'val_sources; expected names from {list(SOURCES)} '
                         "(with or without the 'package:' part)")
    return matches[0]


@DATASETS.register_module()
class EmbeddedPhotos(BaseDataset):
    """Square crops of the 11 photographs shipped in pip packages.

    Sources (``SOURCES``): scikit-image's astronaut, chelsea, coffee, rocket,
    hubble_deep_field, immunohistochemistry, retina and stereo_motorcycle
    (left view); scikit-learn's china and flower; matplotlib's grace_hopper.
    The split is by photo: ``val_sources`` form ``'val'``, the others
    ``'train'``, so no photo is in both. ``num_crops`` crops are shared out
    evenly over the split's photos (in ``SOURCES`` order); the crops of one
    photo are drawn uniformly from a ``numpy`` generator seeded by ``seed``
    and the photo's name, so the same arguments give the same crops in every
    process, and a photo's first n crops do not depend on the split or on
    ``num_crops``.

    Each data item before the pipeline holds ``img`` (``(crop_size,
    crop_size, 3)`` uint8 RGB), ``img_shape`` and ``ori_shape`` (both
    ``(crop_size, crop_size)``), ``img_path`` (the source key, e.g.
    ``'skimage:astronaut'``), ``crop_box`` (``(x1, y1, x2, y2)``, ends
    exclusive, in pixels of the photo after ``max_size`` scaling),
    ``source_shape`` (that photo's ``(H, W)``) and ``sample_idx``.

    Args:
        split (str): ``'train'``, ``'val'`` or ``'all'``. Defaults to
            ``'train'``.
        val_sources (Sequence[str]): Photos of the val split, as keys of
            ``SOURCES`` or bare names (``'chelsea'``). Defaults to
            ``('skimage:chelsea', 'sklearn:china')``.
        crop_size (int): Side of the square crops, in pixels. Defaults to 64.
        num_crops (int, optional): Crops in the chosen split. None means 2048
            for train, 128 for val, 2176 for all. Defaults to None.
        max_size (int, optional): Shrink photos whose longer side exceeds
            this before cropping (only hubble_deep_field 1000 px, retina
            1411 px and stereo_motorcycle 741 px at the default), so that a
            crop covers a similar share of each scene. None keeps full size.
            Defaults to 640.
        seed (int): Seed of the crop positions. Defaults to 0.
        pipeline (Sequence[dict | Callable]): Transforms applied to each
            crop, e.g. ``mmpretrain.RandomFlip`` then
            ``mmpretrain.PackInputs``. Defaults to ().
        test_mode (bool): mmengine's test mode (no refetch on a None from the
            pipeline). Defaults to False.
    """

    def __init__(self,
                 split: str = 'train',
                 val_sources: Sequence[str] = DEFAULT_VAL_SOURCES,
                 crop_size: int = 64,
                 num_crops: Optional[int] = None,
                 max_size: Optional[int] = 640,
                 seed: int = 0,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 **kwargs) -> None:
        if split not in DEFAULT_NUM_CROPS:
            raise ValueError(f"EmbeddedPhotos: split must be 'train', 'val' "
                             f"or 'all', got {split!r}")
        if isinstance(val_sources, str):
            raise ValueError('EmbeddedPhotos: val_sources must be a list of '
                             f'names, got the string {val_sources!r}; write '
                             f'[{val_sources!r}]')
        val_keys = {_resolve_source(name) for name in val_sources}
        if split == 'train':
            sources = [key for key in SOURCES if key not in val_keys]
        elif split == 'val':
            sources = [key for key in SOURCES if key in val_keys]
        else:
            sources = list(SOURCES)
        if not sources:
            raise ValueError(
                f'EmbeddedPhotos: split {split!r} has no photo with '
                f'val_sources={list(val_sources)}; leave at least one photo '
                'out of val_sources for train, and name one for val')
        if not isinstance(crop_size, int) or crop_size < 1:
            raise ValueError('EmbeddedPhotos: crop_size must be a positive '
                             f'int, got {crop_size!r}')
        if max_size is not None and max_size < crop_size:
            raise ValueError(f'EmbeddedPhotos: max_size={max_size} is smaller '
                             f'than crop_size={crop_size}; raise max_size or '
                             'set it to None')
        if num_crops is None:
            num_crops = DEFAULT_NUM_CROPS[split]
        if not isinstance(num_crops, int) or num_crops < 1:
            raise ValueError('EmbeddedPhotos: num_crops must be a positive '
                             f'int or None, got {num_crops!r}')
        if not isinstance(seed, int) or seed < 0:
            raise ValueError('EmbeddedPhotos: seed must be a non-negative '
                             f'int, got {seed!r}')
        self.split = split
        self.sources = tuple(sources)
        self.crop_size = crop_size
        self.num_crops = num_crops
        self.max_size = max_size
        self.seed = seed
        super().__init__(
            pipeline=list(pipeline), test_mode=test_mode, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Draw the crop boxes; return ``dict(img_path, crop_box, ...)``s."""
        per_source, extra = divmod(self.num_crops, len(self.sources))
        data_list = []
        for index, key in enumerate(self.sources):
            count = per_source + (1 if index < extra else 0)
            height, width = load_photo(key, self.max_size).shape[:2]
            if min(height, width) < self.crop_size:
                raise ValueError(
                    f'EmbeddedPhotos: {key} is {height}x{width} after '
                    f'max_size={self.max_size}, smaller than crop_size='
                    f'{self.crop_size}; lower crop_size or raise max_size')
            # Seeded by the photo's name, not its place in the split, and
            # drawn one (y, x) pair after another: a photo's first n crops
            # stay the same when the split or num_crops changes.
            rng = np.random.default_rng(
                [self.seed, zlib.crc32(key.encode())])
            corners = rng.integers(
                0, [height - self.crop_size + 1, width - self.crop_size + 1],
                size=(count, 2))
            for y, x in corners.tolist():
                data_list.append(
                    dict(
                        img_path=key,
                        crop_box=(x, y, x + self.crop_size,
                                  y + self.crop_size),
                        source_shape=(height, width)))
        return data_list

    def prepare_data(self, idx: int) -> Optional[dict]:
        """Cut crop ``idx`` from its (cached) photo and run the pipeline.

        Args:
            idx (int): Index into the dataset.

        Returns:
            Optional[dict]: The pipeline's output.
        """
        data_info = self.get_data_info(idx)
        photo = load_photo(data_info['img_path'], self.max_size)
        x1, y1, x2, y2 = data_info['crop_box']
        img = photo[y1:y2, x1:x2].copy()
        data_info['img'] = img
        data_info['img_shape'] = img.shape[:2]
        data_info['ori_shape'] = img.shape[:2]
        return run_pipeline(self.pipeline, data_info, 'EmbeddedPhotos')
