"""scikit-learn's handwritten digits as a small labelled image set."""
from typing import Callable, List, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset
from PIL import Image

from lmd_toolkit.registry import DATASETS


@DATASETS.register_module()
class DigitsDataset(BaseDataset):
    """The 1,797 8x8 grey digits of ``sklearn.datasets.load_digits()``.

    Shipped inside scikit-learn (no download). Every image (values 0..16) is
    scaled to 0..255, resized to ``img_size`` (bicubic) and repeated to 3
    channels: ``img`` is an ``(img_size, img_size, 3)`` uint8 RGB array and
    ``gt_label`` an int in 0..9. The split is fixed: a permutation seeded by
    ``seed``, stratified per class, puts ``val_fraction`` of every class in
    'val' (359 images at 0.2) and the rest in 'train' (1,438).

    Args:
        split (str): 'train', 'val' or 'all'. Defaults to 'train'.
        img_size (int): Output side in pixels. Defaults to 32.
        val_fraction (float): Fraction of every class held out for 'val'.
            Defaults to 0.2.
        seed (int): Seed of the split permutation. Defaults to 0.
        pipeline (list): Data transforms. Defaults to ().
        test_mode (bool): mmengine's test mode flag. Defaults to False.
        lazy_init (bool): Defer loading until first use. Defaults to False.
    """

    METAINFO = dict(classes=tuple(str(i) for i in range(10)))

    def __init__(self,
                 split: str = 'train',
                 img_size: int = 32,
                 val_fraction: float = 0.2,
                 seed: int = 0,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 lazy_init: bool = False) -> None:
        if split not in ('train', 'val', 'all'):
            raise ValueError(f"DigitsDataset: split must be 'train', 'val' "
                             f"or 'all', got {split!r}.")
        if not 0 < val_fraction < 1:
            raise ValueError('DigitsDataset: val_fraction must be in (0, 1).')
        self.split = split
        self.img_size = img_size
        self.val_fraction = val_fraction
        self.seed = seed
        super().__init__(
            pipeline=list(pipeline),
            test_mode=test_mode,
            lazy_init=lazy_init,
            serialize_data=False)

    def split_indices(self) -> np.ndarray:
        """Indices into ``load_digits()`` of this split, sorted."""
        from sklearn.datasets import load_digits
        targets = load_digits().target
        rng = np.random.RandomState(self.seed)
        val = []
        for label in range(10):
            members = np.flatnonzero(targets == label)
            members = members[rng.permutation(len(members))]
            val.extend(members[:int(round(len(members) *
                                          self.val_fraction))])
        is_val = np.zeros(len(targets), dtype=bool)
        is_val[val] = True
        if self.split == 'val':
            return np.flatnonzero(is_val)
        if self.split == 'train':
            return np.flatnonzero(~is_val)
        return np.arange(len(targets))

    def load_data_list(self) -> List[dict]:
        """One dict per image: ``img``, ``gt_label``, ``digits_index``."""
        from sklearn.datasets import load_digits
        digits = load_digits()
        data_list = []
        for index in self.split_indices():
            grey = np.clip(digits.images[index] * (255.0 / 16.0), 0, 255)
            img = Image.fromarray(grey.round().astype(np.uint8)).resize(
                (self.img_size, self.img_size), Image.BICUBIC)
            rgb = np.repeat(np.asarray(img)[:, :, None], 3, axis=2)
            data_list.append(
                dict(
                    img=np.ascontiguousarray(rgb),
                    gt_label=int(digits.target[index]),
                    digits_index=int(index)))
        return data_list

    def get_cat_ids(self, idx: int) -> List[int]:
        """The class of sample ``idx`` (for class-aware samplers)."""
        return [self.get_data_info(idx)['gt_label']]


def digits_arrays(split: str = 'train',
                  img_size: int = 32,
                  **kwargs) -> tuple:
    """``(images (N, S, S, 3) uint8, labels (N,) int64)`` of a split."""
    dataset = DigitsDataset(split=split, img_size=img_size, **kwargs)
    imgs = np.stack([dataset.get_data_info(i)['img']
                     for i in range(len(dataset))])
    labels = np.array([dataset.get_data_info(i)['gt_label']
                       for i in range(len(dataset))])
    return imgs, labels


