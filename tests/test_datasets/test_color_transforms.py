import itertools
import re

import numpy as np
import pytest
from mmengine.registry import DefaultScope

from lmd_toolkit.datasets.transforms import (RandomChannelShuffle,
                                             RandomColorField)
from lmd_toolkit.registry import TRANSFORMS


def photo(height=64, width=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_built_from_config_by_unprefixed_name():
    with DefaultScope.overwrite_default_scope('lmd_toolkit'):
        field = TRANSFORMS.build(dict(type='RandomColorField', prob=0.5))
        shuffle = TRANSFORMS.build(dict(type='RandomChannelShuffle'))
    assert isinstance(field, RandomColorField) and field.prob == 0.5
    assert isinstance(shuffle, RandomChannelShuffle)
    assert repr(field) == 'RandomColorField(prob=0.5, max_grid=4)'


def test_color_field_prob_zero_keeps_the_image():
    img = photo()
    out = RandomColorField(prob=0.0)(dict(img=img.copy()))['img']
    np.testing.assert_array_equal(out, img)


def test_color_field_grid_one_is_one_flat_colour_of_the_same_shape():
    np.random.seed(0)
    colours = []
    for _ in range(200):
        out = RandomColorField(prob=1.0, max_grid=1)(dict(img=photo()))['img']
        assert out.shape == (64, 48, 3) and out.dtype == np.uint8
        flat = out.reshape(-1, 3)
        assert (flat == flat[0]).all()
        colours.append(flat[0])
    colours = np.stack(colours).astype(float)
    # Uniform colours in [0, 255]: mean 127.5, std 73.6 per channel.
    assert np.abs(colours.mean(0) - 127.5).max() < 15
    assert np.abs(colours.std(0) - 255 / 12**0.5).max() < 10
    assert colours.min() < 10 and colours.max() > 245


def test_color_field_is_smooth_and_varies():
    np.random.seed(1)
    steps, spans = [], []
    for _ in range(50):
        out = RandomColorField(prob=1.0, max_grid=4)(
            dict(img=photo()))['img'].astype(float)
        steps.append(np.abs(np.diff(out, axis=0)).mean())
        spans.append(out.max((0, 1)) - out.min((0, 1)))
    # Neighbouring pixels of the photo differ by ~85 levels on average; a
    # grid of at most 4 x 4 colours over 48-64 px changes by a few levels.
    assert np.mean(steps) < 6
    # Most fields are not flat (grid side 1 has probability 1/4).
    assert np.mean(np.max(spans, axis=1) > 20) > 0.5


def test_color_field_replaces_with_its_probability():
    np.random.seed(2)
    img = photo()
    transform = RandomColorField(prob=0.25)
    replaced = [
        not np.array_equal(transform(dict(img=img.copy()))['img'], img)
        for _ in range(400)
    ]
    assert 0.18 < np.mean(replaced) < 0.32


def test_channel_shuffle_draws_every_order_uniformly():
    np.random.seed(3)
    img = photo()
    counts = {order: 0 for order in itertools.permutations(range(3))}
    for _ in range(600):
        out = RandomChannelShuffle()(dict(img=img.copy()))['img']
        assert out.flags['C_CONTIGUOUS']
        order = tuple(
            next(c for c in range(3) if np.array_equal(out[..., k],
                                                       img[..., c]))
            for k in range(3))
        counts[order] += 1
    assert all(60 < n < 140 for n in counts.values()), counts


def test_channel_shuffle_prob_zero_keeps_the_image():
    img = photo()
    out = RandomChannelShuffle(prob=0.0)(dict(img=img.copy()))['img']
    np.testing.assert_array_equal(out, img)


def test_same_seed_same_output():
    outs = []
    for _ in range(2):
        np.random.seed(4)
        field = RandomColorField(prob=1.0)(dict(img=photo()))['img']
        shuffled = RandomChannelShuffle()(dict(img=photo()))['img']
        outs.append((field, shuffled))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize('build,message', [
    (lambda: RandomColorField(prob=1.5), 'prob must lie in [0, 1], got 1.5'),
    (lambda: RandomColorField(max_grid=0), 'max_grid must be >= 1, got 0'),
    (lambda: RandomChannelShuffle(prob=-0.1), 'got -0.1'),
])
def test_bad_arguments_name_the_problem(build, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


@pytest.mark.parametrize('transform', [RandomColorField, RandomChannelShuffle])
def test_non_uint8_image_is_refused_with_the_fix(transform):
    img = photo().astype(np.float32)
    with pytest.raises(TypeError, match='uint8 image, got dtype float32'):
        transform(prob=1.0)(dict(img=img))
