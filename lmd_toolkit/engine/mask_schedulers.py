"""Mask-ratio schedulers (paper §3.2.3, Fig. 5).

A scheduler is a pure function of the global iteration ``t`` (0-based) and
the total number of training iterations ``T``: ``ratio(t, T) -> float``. It
keeps no state, so a resumed run continues the same curve. Schedulers that
want randomness (e.g. MaskGIT's per-iteration ratio) draw it from
:meth:`BaseMaskRatio.generator`, seeded by ``(seed, t)``, which keeps them
pure too.
"""
import math
from abc import ABCMeta, abstractmethod
from typing import Optional, Sequence, Union

import torch

from lmd_toolkit.registry import MASK_SCHEDULERS


def check_ratio(name: str, value: float) -> float:
    """Return ``value`` as float if it lies in [0, 1), else raise."""
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f'{name} must be in [0, 1), got {value!r}')
    return value


class BaseMaskRatio(metaclass=ABCMeta):
    """Base class of mask-ratio schedulers.

    Subclasses implement :meth:`get_ratio`; :meth:`ratio` validates the
    iteration arguments and the returned value.

    Args:
        min_ratio (float): Smallest mask ratio, in [0, 1). Defaults to 0.15.
        max_ratio (float): Largest mask ratio, in [0, 1), not below
            ``min_ratio``. Defaults to 0.75.
        seed (int): Seed of :meth:`generator` for random schedules.
            Defaults to 0.
    """

    def __init__(self,
                 min_ratio: float = 0.15,
                 max_ratio: float = 0.75,
                 seed: int = 0) -> None:
        self.min_ratio = check_ratio('min_ratio', min_ratio)
        self.max_ratio = check_ratio('max_ratio', max_ratio)
        if self.min_ratio > self.max_ratio:
            raise ValueError(
                f'min_ratio must not exceed max_ratio, got min_ratio='
                f'{self.min_ratio!r} > max_ratio={self.max_ratio!r}')
        self.seed = int(seed)

    @abstractmethod
    def get_ratio(self, cur_iter: int, max_iters: int) -> float:
        """The mask ratio at 0-based iteration ``cur_iter`` of ``max_iters``
        (both already validated)."""

    def ratio(self, cur_iter: int, max_iters: int) -> float:
        """Mask ratio at global iteration ``cur_iter`` (0-based) of a run of
        ``max_iters`` iterations.

        Raises:
            ValueError: ``max_iters <= 0``, ``cur_iter`` outside
                ``[0, max_iters)``, or a ratio outside [0, 1).
        """
        if int(max_iters) != max_iters or max_iters <= 0:
            raise ValueError(
                f'max_iters must be a positive integer, got {max_iters!r}')
        if int(cur_iter) != cur_iter or not 0 <= cur_iter < max_iters:
            raise ValueError(f'cur_iter must be an integer in [0, max_iters='
                             f'{max_iters}), got {cur_iter!r}')
        value = self.get_ratio(int(cur_iter), int(max_iters))
        return check_ratio(f'{type(self).__name__}.get_ratio({cur_iter}, '
                           f'{max_iters})', value)

    __call__ = ratio

    def generator(self, cur_iter: int) -> torch.Generator:
        """A CPU generator seeded by ``(seed, cur_iter)``: random schedules
        stay pure functions of the iteration."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + cur_iter)

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items())
        return f'{type(self).__name__}({args})'


@MASK_SCHEDULERS.register_module()
class FixedMaskRatio(BaseMaskRatio):
    """Constant mask ratio: MAE's 0.75, the paper's "w/o MDS" ablation.

    Args:
        ratio (float): The mask ratio, in [0, 1). Defaults to 0.75.
    """

    def __init__(self, ratio: float = 0.75) -> None:
        ratio = check_ratio('ratio', ratio)
        super().__init__(min_ratio=ratio, max_ratio=ratio)

    def get_ratio(self, cur_iter: int, max_iters: int) -> float:
        return self.max_ratio


@MASK_SCHEDULERS.register_module()
class UniformMaskRatio(BaseMaskRatio):
    """Linear ("uniform") schedule from ``min_ratio`` to ``max_ratio``.

    ``r(t) = min + (max - min) * t / (T - 1)``: the first iteration uses
    ``min_ratio`` and the last exactly ``max_ratio`` (``T = 1`` gives
    ``min_ratio``). Paper §3.2.3, https://arxiv.org/abs/2312.07971.

    Args:
        min_ratio (float): Ratio at the first iteration. Defaults to 0.15.
        max_ratio (float): Ratio at the last iteration. Defaults to 0.75.
    """

    def __init__(self, min_ratio: float = 0.15, max_ratio: float = 0.75) -> None:
        super().__init__(min_ratio=min_ratio, max_ratio=max_ratio)

    def get_ratio(self, cur_iter: int, max_iters: int) -> float:
        if max_iters == 1:
            return self.min_ratio
        u = cur_iter / (max_iters - 1)
        return self.min_ratio + (self.max_ratio - self.min_ratio) * u


@MASK_SCHEDULERS.register_module()
class PiecewiseMaskRatio(BaseMaskRatio):
    """Piecewise-linear schedule, the paper's intended form (§3.2.3).

    With ``u = t / T`` and milestones ``(a, b, c)`` (default 1/6, 1/3, 2/3):
    linear ``min -> mid`` on ``[0, a)``, hold ``mid`` on ``[a, b)``, linear
    ``mid -> max`` on ``[b, c)``, then hold ``max``. (The official code's
    third phase uses the absolute ``t`` and climbs above 1; not reproduced.)

    Args:
        min_ratio (float): Ratio at ``t = 0``. Defaults to 0.15.
        max_ratio (float): Ratio from ``u = c`` on. Defaults to 0.75.
        mid_ratio (float): Plateau between the two ramps. Defaults to 0.40.
        milestones (Sequence[float]): Fractions ``(a, b, c)`` of the run with
            ``0 < a <= b < c <= 1``. Defaults to (1/6, 1/3, 2/3).
    """

    def __init__(self,
                 min_ratio: float = 0.15,
                 max_ratio: float = 0.75,
                 mid_ratio: float = 0.40,
                 milestones: Sequence[float] = (1 / 6, 1 / 3, 2 / 3)) -> None:
        super().__init__(min_ratio=min_ratio, max_ratio=max_ratio)
        self.mid_ratio = check_ratio('mid_ratio', mid_ratio)
        if not self.min_ratio <= self.mid_ratio <= self.max_ratio:
            raise ValueError(
                f'mid_ratio must lie in [min_ratio, max_ratio] = '
                f'[{self.min_ratio}, {self.max_ratio}], got {self.mid_ratio!r}')
        milestones = tuple(float(m) for m in milestones)
        if (len(milestones) != 3 or not 0 < milestones[0] <= milestones[1] <
                milestones[2] <= 1):
            raise ValueError('milestones must be three fractions a, b, c with '
                             f'0 < a <= b < c <= 1, got {milestones!r}')
        self.milestones = milestones

    def get_ratio(self, cur_iter: int, max_iters: int) -> float:
        a, b, c = self.milestones
        u = cur_iter / max_iters
        if u < a:
            return self.min_ratio + (self.mid_ratio - self.min_ratio) * u / a
        if u < b:
            return self.mid_ratio
        if u < c:
            return self.mid_ratio + (self.max_ratio -
                                     self.mid_ratio) * (u - b) / (c - b)
        return self.max_ratio


@MASK_SCHEDULERS.register_module()
class CosineMaskRatio(BaseMaskRatio):
    """Cosine schedule of the official LMD code, the paper's best (§3.2.3).

    The improved-DDPM cosine: with ``N = int(ramp_fraction * T)``,
    ``f(x) = cos²(((x/N) + s)/(1 + s)·π/2) / cos²(s/(1 + s)·π/2)`` and
    ``r(t) = min + (max - min)·(1 - f(t))`` while ``t <= N``, then ``max``.
    ``N = 0`` (tiny runs) holds ``max_ratio`` from the start.

    Args:
        min_ratio (float): Ratio at ``t = 0``. Defaults to 0.15.
        max_ratio (float): Ratio from ``t = N`` on. Defaults to 0.75.
        ramp_fraction (float): Fraction of the run spent ramping, in (0, 1].
            Defaults to 2/3.
        s (float): Offset of the cosine, as in improved DDPM. Defaults to
            0.008.
    """

    def __init__(self,
                 min_ratio: float = 0.15,
                 max_ratio: float = 0.75,
                 ramp_fraction: float = 2 / 3,
                 s: float = 0.008) -> None:
        super().__init__(min_ratio=min_ratio, max_ratio=max_ratio)
        if not 0 < ramp_fraction <= 1:
            raise ValueError(
                f'ramp_fraction must be in (0, 1], got {ramp_fraction!r}')
        if s < 0:
            raise ValueError(f's must be non-negative, got {s!r}')
        self.ramp_fraction = float(ramp_fraction)
        self.s = float(s)

    def get_ratio(self, cur_iter: int, max_iters: int) -> float:
        ramp_iters = int(self.ramp_fraction * max_iters)
        if cur_iter >= ramp_iters:
            return self.max_ratio
        s = self.s

        def cos2(u: float) -> float:
            return math.cos((u + s) / (1 + s) * math.pi / 2)**2

        f = cos2(cur_iter / ramp_iters) / cos2(0.0)
        return self.min_ratio + (self.max_ratio - self.min_ratio) * (1 - f)


class UnknownMaskSchedulerError(KeyError, ValueError):
    """A mask scheduler ``type`` that is not registered (a ``KeyError`` for
    config code, a ``ValueError`` for API callers)."""

    def __str__(self) -> str:
        return str(self.args[0])


def build_mask_scheduler(
        cfg: Union[None, str, dict, BaseMaskRatio] = None,
        model: Optional[torch.nn.Module] = None) -> BaseMaskRatio:
    """The one builder of mask schedulers (hook, sampler, tools).

    Args:
        cfg (str | dict | BaseMaskRatio, optional): A registered name (built
            with its defaults), a config dict with ``type`` or an instance
            (returned as is). None: the scheduler of ``model.cfg``'s
            ``default_hooks.mask_ratio`` when there is one, else
            ``CosineMaskRatio()``.
        model (nn.Module, optional): A model from ``init_model`` (has
            ``cfg``), for ``cfg=None``.

    Returns:
        BaseMaskRatio: The scheduler.

    Raises:
        UnknownMaskSchedulerError: The ``type`` is not registered; the
            message lists the registered schedulers and how to register a
            plugin.
    """
    if isinstance(cfg, BaseMaskRatio):
        return cfg
    if cfg is None:
        model_cfg = getattr(model, 'cfg', None)
        hook = (model_cfg.get('default_hooks', {}) or {}).get('mask_ratio') \
            if model_cfg is not None else None
        cfg = dict(hook['scheduler']) if hook and hook.get('scheduler') \
            else dict(type='CosineMaskRatio')
    if isinstance(cfg, str):
        cfg = dict(type=cfg)
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'a mask scheduler must be a registered name, a dict '
                        f'with "type" or a BaseMaskRatio, got {cfg!r}.')
    name = cfg['type']
    if isinstance(name, str) and name not in MASK_SCHEDULERS.module_dict:
        raise UnknownMaskSchedulerError(
            f'Unknown mask scheduler type={name!r} (unknown mask scheduler '
            f'{name!r}: not in MASK_SCHEDULERS). Registered: '
            f'{sorted(MASK_SCHEDULERS.module_dict)}. A plugin registers its '
            'own with @MASK_SCHEDULERS.register_module() and is imported by '
            "custom_imports=dict(imports=['your_pkg'], "
            'allow_failed_imports=False) (docs/en/plugins.md).')
    return MASK_SCHEDULERS.build(cfg)
