import math

import pytest

from lmd_toolkit.engine.mask_schedulers import (BaseMaskRatio,
                                                CosineMaskRatio,
                                                FixedMaskRatio,
                                                PiecewiseMaskRatio,
                                                UniformMaskRatio)
from lmd_toolkit.registry import MASK_SCHEDULERS

# LMD_REFERENCE.md: cosine ratio at fraction u = t / N of the ramp.
COSINE_REFERENCE = {
    0.0: 0.150,
    0.1: 0.167,
    0.25: 0.242,
    0.5: 0.454,
    0.75: 0.663,
    0.9: 0.736,
    1.0: 0.750
}


@pytest.mark.parametrize('u,expected', sorted(COSINE_REFERENCE.items()))
def test_cosine_reference_values(u, expected):
    max_iters = 3000  # ramp N = int(2T/3) = 2000
    t = int(round(u * 2000))
    assert CosineMaskRatio().ratio(t, max_iters) == pytest.approx(
        expected, abs=1e-3)


def test_cosine_ramp_then_hold():
    sched = CosineMaskRatio()
    max_iters = 300  # N = 200
    assert sched.ratio(0, max_iters) == pytest.approx(0.15)
    assert sched.ratio(199, max_iters) < 0.75
    assert all(sched.ratio(t, max_iters) == 0.75 for t in range(200, 300))
    # Independent evaluation of the official formula at one point.
    s, n, t = 0.008, 200, 37
    f = math.cos((t / n + s) / (1 + s) * math.pi / 2)**2 / math.cos(
        s / (1 + s) * math.pi / 2)**2
    assert sched.ratio(t, max_iters) == pytest.approx(0.15 + 0.6 * (1 - f))


def test_piecewise_breakpoints_exact():
    sched = PiecewiseMaskRatio()
    max_iters = 600  # T/6 = 100, T/3 = 200, 2T/3 = 400
    assert sched.ratio(0, max_iters) == 0.15
    assert sched.ratio(50, max_iters) == pytest.approx(0.275)
    assert sched.ratio(100, max_iters) == 0.40
    assert sched.ratio(199, max_iters) == 0.40
    assert sched.ratio(200, max_iters) == 0.40
    assert sched.ratio(300, max_iters) == pytest.approx(0.575)
    assert sched.ratio(400, max_iters) == 0.75
    assert sched.ratio(599, max_iters) == 0.75


def test_uniform_breakpoints_exact():
    sched = UniformMaskRatio()
    assert sched.ratio(0, 11) == 0.15
    assert sched.ratio(5, 11) == pytest.approx(0.45)
    assert sched.ratio(10, 11) == pytest.approx(0.75)
    assert sched.ratio(0, 1) == 0.15


def test_fixed():
    assert FixedMaskRatio().ratio(0, 10) == 0.75
    assert FixedMaskRatio(0.5).ratio(9, 10) == 0.5


@pytest.mark.parametrize('name', ['FixedMaskRatio', 'UniformMaskRatio',
                                  'PiecewiseMaskRatio', 'CosineMaskRatio'])
@pytest.mark.parametrize('max_iters', [1, 2, 7, 100, 1001])
def test_monotone_and_bounded(name, max_iters):
    sched = MASK_SCHEDULERS.build(dict(type=name))
    ratios = [sched.ratio(t, max_iters) for t in range(max_iters)]
    assert all(b >= a for a, b in zip(ratios, ratios[1:]))
    assert all(sched.min_ratio <= r <= sched.max_ratio for r in ratios)


def test_custom_min_max():
    sched = CosineMaskRatio(min_ratio=0.1, max_ratio=0.9)
    assert sched.ratio(0, 30) == pytest.approx(0.1)
    assert sched.ratio(29, 30) == pytest.approx(0.9)


@pytest.mark.parametrize('kwargs,match', [
    (dict(min_ratio=-0.1), r'min_ratio must be in \[0, 1\), got -0.1'),
    (dict(max_ratio=1.0), r'max_ratio must be in \[0, 1\), got 1.0'),
    (dict(min_ratio=0.8, max_ratio=0.5),
     r'min_ratio=0.8 > max_ratio=0.5'),
])
def test_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UniformMaskRatio(**kwargs)


def test_invalid_iterations():
    sched = CosineMaskRatio()
    with pytest.raises(ValueError, match='max_iters must be a positive '
                       'integer, got 0'):
        sched.ratio(0, 0)
    with pytest.raises(ValueError, match=r'cur_iter must be an integer in '
                       r'\[0, max_iters=10\), got 10'):
        sched.ratio(10, 10)
    with pytest.raises(ValueError, match='got -1'):
        sched.ratio(-1, 10)
    with pytest.raises(ValueError, match=r'ratio must be in \[0, 1\), got 1'):
        FixedMaskRatio(1)
    with pytest.raises(ValueError, match='mid_ratio must lie in'):
        PiecewiseMaskRatio(mid_ratio=0.9)


def test_subclass_output_is_validated():

    class Broken(BaseMaskRatio):

        def get_ratio(self, cur_iter, max_iters):
            return 1.1  # the official piecewise bug climbs above 1

    with pytest.raises(ValueError, match=r'Broken.get_ratio\(3, 10\) must '
                       r'be in \[0, 1\), got 1.1'):
        Broken().ratio(3, 10)


def test_generator_is_a_pure_function_of_iteration():
    sched = FixedMaskRatio()
    a = sched.generator(5).initial_seed()
    assert a == sched.generator(5).initial_seed()
    assert a != sched.generator(6).initial_seed()
