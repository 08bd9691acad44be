import os
import os.path as osp
import shutil
import warnings

import cv2
import numpy as np
import pytest
import torch
from matplotlib import cbook
from mmengine.dataset import pseudo_collate
from PIL import Image

from lmd_toolkit.datasets import (ImageFolderDataset, ImageReadWarning,
                                  read_rgb_image)

GRAY = np.array([[0, 100], [200, 255]], dtype=np.uint8)
WIDE = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
WIDE_AS_8BIT = np.array([[0, 1, 128, 255]], dtype=np.uint8)


def write_folder(root):
    """Write one file of each kind; return the names expected to be kept."""
    shutil.copy(
        cbook.get_sample_data('grace_hopper.jpg', asfileobj=False),
        osp.join(root, 'photo.jpg'))
    Image.fromarray(GRAY, mode='L').save(osp.join(root, 'gray.png'))
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, :, 0] = 200  # red 200 everywhere, alpha 255, 0 and 128
    rgba[0, :, 3] = [255, 0, 128]
    Image.fromarray(rgba, mode='RGBA').save(osp.join(root, 'rgba.png'))
    Image.fromarray(WIDE).save(osp.join(root, 'wide.png'))
    palette = Image.new('P', (2, 1))
    palette.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    palette.putdata([1, 0])
    palette.save(osp.join(root, 'palette.bmp'))
    with open(osp.join(root, 'corrupt.png'), 'wb') as f:
        f.write(b'this is not an image at all' * 10)
    open(osp.join(root, 'empty.jpg'), 'wb').close()
    with open(osp.join(root, 'notes.txt'), 'w') as f:
        f.write('not an image')
    nested = osp.join(root, 'nested', 'deeper')
    os.makedirs(nested)
    Image.fromarray(np.full((5, 7, 3), 90, np.uint8)).save(
        osp.join(nested, 'inner.PNG'))
    return [
        'gray.png', 'nested/deeper/inner.PNG', 'palette.bmp', 'photo.jpg',
        'rgba.png', 'wide.png'
    ]


@pytest.fixture
def folder(tmp_path):
    kept = write_folder(str(tmp_path))
    return str(tmp_path), kept


def build(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ImageReadWarning)
        return ImageFolderDataset(data_root=root, **kwargs)


def test_scan_keeps_images_in_sorted_order(folder):
    root, kept = folder
    dataset = build(root)
    paths = [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]
    assert [osp.relpath(p, root) for p in paths] == kept


def test_scan_warns_naming_each_skipped_file(folder):
    root, _ = folder
    with pytest.warns(ImageReadWarning) as record:
        ImageFolderDataset(data_root=root)
    messages = [str(w.message) for w in record]
    assert any('corrupt.png: skipped' in m for m in messages)
    assert any('empty.jpg: skipped, the file is empty (0 bytes)' in m
               for m in messages)
    assert not any('notes.txt' in m for m in messages)


def test_data_prefix_selects_a_subfolder(folder):
    root, _ = folder
    dataset = build(root, data_prefix=dict(img_path='nested'))
    assert len(dataset) == 1
    item = dataset[0]
    assert item['img_path'].endswith('inner.PNG')
    assert item['img'].shape == (5, 7, 3)
    assert item['img_shape'] == item['ori_shape'] == (5, 7)
    assert (item['img'] == 90).all()


def test_conversions_give_uint8_rgb(folder):
    root, _ = folder
    photo = read_rgb_image(osp.join(root, 'photo.jpg'))
    with Image.open(osp.join(root, 'photo.jpg')) as img:
        np.testing.assert_array_equal(photo, np.asarray(img.convert('RGB')))
    assert photo.shape == (600, 512, 3) and photo.dtype == np.uint8
    gray = read_rgb_image(osp.join(root, 'gray.png'))
    np.testing.assert_array_equal(gray, np.repeat(GRAY[..., None], 3, 2))
    palette = read_rgb_image(osp.join(root, 'palette.bmp'))
    np.testing.assert_array_equal(palette,
                                  [[[40, 50, 60], [10, 20, 30]]])


def test_rgba_is_composited_on_white_and_warns_once(folder):
    root, _ = folder
    path = osp.join(root, 'rgba.png')
    with pytest.warns(ImageReadWarning, match='rgba.png: transparent'):
        rgba = read_rgb_image(path)
    # alpha 255 keeps the colour, alpha 0 gives white, 128 blends.
    np.testing.assert_array_equal(
        rgba, [[[200, 0, 0], [255, 255, 255], [227, 127, 127]]])
    with warnings.catch_warnings():
        warnings.simplefilter('error', ImageReadWarning)
        read_rgb_image(path)


def test_opaque_rgba_does_not_warn(tmp_path):
    path = str(tmp_path / 'opaque.png')
    rgba = np.full((2, 2, 4), 255, np.uint8)
    rgba[..., 1] = 7
    Image.fromarray(rgba, mode='RGBA').save(path)
    with warnings.catch_warnings():
        warnings.simplefilter('error', ImageReadWarning)
        out = read_rgb_image(path)
    np.testing.assert_array_equal(out[..., 1], 7)


def test_16bit_gray_png_is_scaled_and_warns(folder):
    root, _ = folder
    path = osp.join(root, 'wide.png')
    with pytest.warns(ImageReadWarning, match='wide.png: 16-bit image'):
        wide = read_rgb_image(path)
    np.testing.assert_array_equal(wide, np.repeat(WIDE_AS_8BIT[..., None], 3,
                                                  2))


def test_16bit_colour_png_is_rounded_not_truncated(tmp_path):
    path = str(tmp_path / 'colour16.png')
    rgb = np.zeros((1, 3, 3), np.uint16)
    rgb[0, :, 0] = [255, 32896, 65535]  # red: 255 / 257 rounds to 1, not 0
    rgb[0, :, 2] = 65535
    cv2.imwrite(path, rgb[..., ::-1])  # OpenCV writes BGR
    with pytest.warns(ImageReadWarning, match='colour16.png: 16-bit'):
        out = read_rgb_image(path)
    np.testing.assert_array_equal(out[0, :, 0], [1, 128, 255])
    np.testing.assert_array_equal(out[0, :, 1], 0)
    np.testing.assert_array_equal(out[0, :, 2], 255)


def test_cmyk_tiff_becomes_rgb(tmp_path):
    path = str(tmp_path / 'print.TIFF')
    cmyk = np.array([[[0, 0, 0, 0], [0, 255, 255, 0]]], np.uint8)
    Image.fromarray(cmyk, mode='CMYK').save(path)
    np.testing.assert_array_equal(
        read_rgb_image(path), [[[255, 255, 255], [255, 0, 0]]])


def test_missing_empty_and_imageless_folders_are_clear(tmp_path):
    missing = str(tmp_path / 'nope')
    with pytest.raises(FileNotFoundError, match='nope'):
        ImageFolderDataset(data_root=missing)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match=r'no readable image file in .*empty'
                       r'.*\.jpg \.jpeg \.png'):
        ImageFolderDataset(data_root=str(empty))
    (empty / 'readme.txt').write_text('hello')
    with pytest.raises(ValueError, match='no readable image file'):
        ImageFolderDataset(data_root=str(empty))


def write_truncated_png(path):
    Image.fromarray(np.arange(64 * 64 * 3, dtype=np.uint8).reshape(
        64, 64, 3)).save(path)
    with open(path, 'rb') as f:
        content = f.read()
    with open(path, 'wb') as f:
        f.write(content[:len(content) // 2])


def test_undecodable_file_is_refetched_in_train_raises_in_test(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / 'a.png')
    write_truncated_png(str(tmp_path / 'b.png'))
    dataset = ImageFolderDataset(data_root=str(tmp_path))
    assert len(dataset) == 2  # the header is fine: it passes the scan
    with pytest.warns(ImageReadWarning, match='b.png: cannot be decoded'):
        assert dataset.prepare_data(1) is None
    item = dataset[1]
    assert item['img_path'].endswith('a.png')
    tested = ImageFolderDataset(data_root=str(tmp_path), test_mode=True)
    with pytest.raises(RuntimeError, match=r'b\.png.*index 1'):
        tested[1]


def test_dataloader_with_workers_iterates_past_bad_files(folder):
    root, kept = folder
    write_truncated_png(osp.join(root, 'zz_truncated.png'))
    dataset = build(root)
    assert len(dataset) == len(kept) + 1
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=3, num_workers=2, collate_fn=pseudo_collate)
    items = [
        (path, img.shape, img.dtype) for batch in loader
        for path, img in zip(batch['img_path'], batch['img'])
    ]
    assert len(items) == len(dataset)
    assert not any(path.endswith('zz_truncated.png') for path, _, _ in items)
    assert all(shape[2] == 3 and dtype == np.uint8
               for _, shape, dtype in items)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="one key 'img_path'"):
        ImageFolderDataset(data_root=str(tmp_path), data_prefix=dict(img=''))
    with pytest.raises(ValueError, match='reads no annotation file'):
        ImageFolderDataset(data_root=str(tmp_path), ann_file='list.txt')


def test_exif_orientation_is_applied(tmp_path):
    path = str(tmp_path / 'phone.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    Image.new('RGB', (40, 20), (0, 128, 255)).save(path, exif=exif)
    assert read_rgb_image(path).shape == (40, 20, 3)
