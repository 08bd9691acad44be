import pickle

import numpy as np
import pytest

from lmd_toolkit.datasets import SOURCES, EmbeddedPhotos, load_photo
from lmd_toolkit.datasets.embedded_photos import DEFAULT_VAL_SOURCES


def crop_boxes(dataset):
    return [
        (dataset.get_data_info(i)['img_path'],
         dataset.get_data_info(i)['crop_box']) for i in range(len(dataset))
    ]


def test_split_is_by_photo_and_disjoint():
    train = EmbeddedPhotos(split='train', num_crops=18)
    val = EmbeddedPhotos(split='val', num_crops=4)
    everything = EmbeddedPhotos(split='all', num_crops=22)
    assert set(val.sources) == set(DEFAULT_VAL_SOURCES)
    assert len(val.sources) == 2
    assert not set(train.sources) & set(val.sources)
    assert set(train.sources) | set(val.sources) == set(SOURCES)
    assert everything.sources == SOURCES
    train_photos = {path for path, _ in crop_boxes(train)}
    val_photos = {path for path, _ in crop_boxes(val)}
    assert train_photos == set(train.sources)
    assert val_photos == set(val.sources)


def test_val_sources_accept_bare_names_and_reject_unknown():
    val = EmbeddedPhotos(
        split='val', val_sources=['coffee', 'sklearn:flower'], num_crops=3)
    assert val.sources == ('skimage:coffee', 'sklearn:flower')
    train = EmbeddedPhotos(
        split='train', val_sources=['coffee', 'sklearn:flower'], num_crops=3)
    assert 'skimage:coffee' not in train.sources
    assert 'skimage:chelsea' in train.sources
    with pytest.raises(ValueError, match="unknown source 'lena'"):
        EmbeddedPhotos(split='val', val_sources=['lena'])
    with pytest.raises(ValueError, match="split 'val' has no photo"):
        EmbeddedPhotos(split='val', val_sources=[])
    with pytest.raises(ValueError, match="split must be 'train'"):
        EmbeddedPhotos(split='test')


def test_default_sizes_per_split():
    assert len(EmbeddedPhotos(split='train')) == 2048
    assert len(EmbeddedPhotos(split='val')) == 128
    assert len(EmbeddedPhotos(split='all')) == 2176


def test_crop_shapes_counts_and_pixels():
    dataset = EmbeddedPhotos(split='val', crop_size=32, num_crops=7)
    assert len(dataset) == 7
    paths = [path for path, _ in crop_boxes(dataset)]
    # 7 crops over 2 photos: the first photo in SOURCES order gets 4.
    assert paths.count('skimage:chelsea') == 4
    assert paths.count('sklearn:china') == 3
    for index in range(len(dataset)):
        item = dataset[index]
        assert item['img'].shape == (32, 32, 3)
        assert item['img'].dtype == np.uint8
        assert item['img_shape'] == item['ori_shape'] == (32, 32)
        assert item['sample_idx'] == index
        x1, y1, x2, y2 = item['crop_box']
        height, width = item['source_shape']
        assert 0 <= x1 and x2 == x1 + 32 and x2 <= width
        assert 0 <= y1 and y2 == y1 + 32 and y2 <= height
        photo = load_photo(item['img_path'], dataset.max_size)
        np.testing.assert_array_equal(item['img'], photo[y1:y2, x1:x2])
    # The crop is a writable copy, not a view of the shared photo.
    item['img'][:] = 0
    assert dataset[len(dataset) - 1]['img'].any()


def test_data_list_holds_no_pixels():
    dataset = EmbeddedPhotos(split='train', num_crops=100)
    assert set(dataset.get_data_info(0)) == {
        'img_path', 'crop_box', 'source_shape', 'sample_idx'
    }
    # 100 small dicts: a few hundred bytes each at most, never an image.
    assert dataset.data_bytes.nbytes < 100 * 300


def test_crops_are_deterministic_across_instances_and_pickle():
    first = EmbeddedPhotos(split='train', num_crops=20, seed=3)
    second = EmbeddedPhotos(split='train', num_crops=20, seed=3)
    copied = pickle.loads(pickle.dumps(first))
    assert crop_boxes(first) == crop_boxes(second) == crop_boxes(copied)
    for index in (0, 7, 19):
        np.testing.assert_array_equal(first[index]['img'],
                                      copied[index]['img'])
    other_seed = EmbeddedPhotos(split='train', num_crops=20, seed=4)
    assert crop_boxes(other_seed) != crop_boxes(first)


def test_crop_positions_are_fixed_values():
    # numpy's PCG64 and zlib.crc32 are stable, so these hold in any process,
    # on any machine; a change here changes every published split.
    dataset = EmbeddedPhotos(split='val', crop_size=32, num_crops=6, seed=0)
    assert crop_boxes(dataset)[:3] == [
        ('skimage:chelsea', (352, 265, 384, 297)),
        ('skimage:chelsea', (352, 212, 384, 244)),
        ('skimage:chelsea', (31, 78, 63, 110)),
    ]


def test_photo_crops_do_not_depend_on_split_or_count():
    val = EmbeddedPhotos(split='val', num_crops=4)
    everything = EmbeddedPhotos(split='all', num_crops=44)
    chelsea_val = [box for path, box in crop_boxes(val)
                   if path == 'skimage:chelsea']
    chelsea_all = [box for path, box in crop_boxes(everything)
                   if path == 'skimage:chelsea']
    assert chelsea_all[:2] == chelsea_val


def test_max_size_scales_large_photos_only():
    full = load_photo('skimage:retina')
    scaled = load_photo('skimage:retina', 640)
    assert full.shape == (1411, 1411, 3)
    assert scaled.shape == (640, 640, 3)
    assert load_photo('skimage:chelsea', 640).shape == (300, 451, 3)
    # Cached: the same read-only array every time.
    assert load_photo('skimage:retina', 640) is scaled
    assert not scaled.flags.writeable
    dataset = EmbeddedPhotos(
        split='val', val_sources=['retina'], num_crops=5, max_size=None)
    assert all(dataset[i]['source_shape'] == (1411, 1411) for i in range(5))


def test_bad_sizes_name_the_fix():
    with pytest.raises(ValueError, match='max_size=48 is smaller than '
                       'crop_size=64'):
        EmbeddedPhotos(max_size=48)
    with pytest.raises(ValueError, match=r'skimage:chelsea is 300x451 .* '
                       'lower crop_size'):
        EmbeddedPhotos(split='val', crop_size=320)
    with pytest.raises(ValueError, match='num_crops must be a positive'):
        EmbeddedPhotos(num_crops=0)


def test_callable_pipeline_sees_the_crop():
    seen = []

    def record(results):
        seen.append(results['img'].shape)
        return dict(inputs=results['img'].mean())

    dataset = EmbeddedPhotos(split='val', num_crops=2, pipeline=[record])
    assert set(dataset[1]) == {'inputs'}
    assert seen == [(64, 64, 3)]
