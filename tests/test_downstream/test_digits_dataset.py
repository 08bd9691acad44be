import numpy as np

from lmd_toolkit.datasets import DigitsDataset


def test_split_is_fixed_disjoint_and_stratified():
    train = DigitsDataset('train')
    val = DigitsDataset('val')
    assert (len(train), len(val)) == (1438, 359)
    train_idx, val_idx = train.split_indices(), val.split_indices()
    assert not set(train_idx) & set(val_idx)
    assert np.array_equal(val_idx, DigitsDataset('val').split_indices())
    assert not np.array_equal(val_idx,
                              DigitsDataset('val', seed=1).split_indices())
    counts = np.bincount([val.get_data_info(i)['gt_label']
                          for i in range(len(val))])
    assert counts.min() >= 35 and counts.max() <= 37


def test_items_are_rgb_uint8_with_labels():
    item = DigitsDataset('val', img_size=24)[0]
    img = item['img']
    assert img.shape == (24, 24, 3) and img.dtype == np.uint8
    assert np.array_equal(img[..., 0], img[..., 2]) and img.max() > 200
    assert 0 <= item['gt_label'] <= 9
