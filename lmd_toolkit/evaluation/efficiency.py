"""MIT, MLT and MLI: training efficiency of a pre-training run (paper Table 1).

Inputs are per-iteration series of one run: ``times[i]``, the seconds of
iteration ``i`` (mmengine's ``train/time``, which includes the data time), and
``losses[i]``, its training loss. With ``n`` iterations and the trailing
moving average ``s_k = mean(losses[k-window+1 .. k])`` for
``k = window-1 .. n-1``::

    MIT = mean(times[skip_first:])                      seconds per iteration
    decrease = s_{window-1} - s_{n-1}
    MLT = sum(times[window:]) / decrease    seconds per unit of loss decrease
    MLI = (n - window) / decrease        iterations per unit of loss decrease

MLT and MLI are None when ``decrease <= 0``. With a ``threshold``, the first
``k >= window-1`` with ``s_k <= threshold`` gives ``time_to_threshold =
sum(times[0..k])`` and ``iters_to_threshold = k + 1``. Why these definitions
and their caveats: ``docs/en/metrics.md``.
"""
import math
from typing import Dict, List, Optional, Sequence, Union

# One line per quantity; the hook writes these into its JSON file.
DEFINITIONS = {
    'smoothing': 's_k = mean(loss[k-window+1 .. k]) for k = window-1 .. n-1 '
    '(trailing moving average over `window` iterations)',
    'MIT': 'mean(time[skip_first:]): seconds per iteration (time includes '
    'data time)',
    'MLT': 'sum(time[window:]) / (s_{window-1} - s_{n-1}): seconds per unit '
    'decrease of the smoothed loss; None if it did not decrease',
    'MLI': '(n - window) / (s_{window-1} - s_{n-1}): iterations per unit '
    'decrease of the smoothed loss; None if it did not decrease',
    'time_to_threshold': 'sum(time[0..k]) at the first k >= window-1 with '
    's_k <= threshold; None if never reached',
    'iters_to_threshold': 'k + 1 for that k; None if never reached',
}


def smooth_losses(losses: Sequence[float], window: int) -> List[float]:
    """Trailing moving average of ``losses`` over ``window`` values.

    Element ``j`` of the result is ``mean(losses[j .. j+window-1])``, i.e.
    the smoothed loss ``s_k`` at iteration ``k = j + window - 1``; every mean
    is correctly rounded (``math.fsum``).

    Args:
        losses (Sequence[float]): Per-iteration losses.
        window (int): Number of values per mean, ``1 <= window <= len``.

    Returns:
        list[float]: ``len(losses) - window + 1`` smoothed values.
    """
    if not isinstance(window, int) or isinstance(window, bool) or \
            not 1 <= window <= len(losses):
        raise ValueError(
            f'smooth_losses: window={window!r} must be an integer between 1 '
            f'and len(losses)={len(losses)}.')
    values = [float(v) for v in losses]
    return [
        math.fsum(values[k - window + 1:k + 1]) / window
        for k in range(window - 1, len(values))
    ]


def _check_finite(name: str, values: Sequence[float]) -> List[float]:
    """``values`` as floats; ValueError naming the first non-finite index."""
    out = [float(v) for v in values]
    for i, v in enumerate(out):
        if not math.isfinite(v):
            raise ValueError(f'{name}[{i}] is {v}: every value must be '
                             'finite.')
    return out


def efficiency_metrics(
        times: Sequence[float],
        losses: Sequence[float],
        window: int = 20,
        threshold: Optional[float] = None,
        skip_first: int = 0,
        data_times: Optional[Sequence[float]] = None
) -> Dict[str, Union[int, float, None]]:
    """MIT, MLT and MLI of one run, see the module docstring.

    Args:
        times (Sequence[float]): Seconds of every iteration, in order
            (mmengine's per-iteration ``time``, data time included).
        losses (Sequence[float]): Training loss of every iteration.
        window (int): Iterations per smoothed loss. Defaults to 20.
        threshold (float, optional): Smoothed-loss level for
            ``time_to_threshold`` / ``iters_to_threshold``. Defaults to None
            (not computed).
        skip_first (int): Iterations left out of MIT only (warm-up, e.g.
            CUDA initialisation and dataloader start). Defaults to 0.
        data_times (Sequence[float], optional): Per-iteration data time;
            gives ``mean_data_time`` (over ``skip_first:`` like MIT).
            Defaults to None.

    Returns:
        dict: ``num_iters``, ``window``, ``total_time`` (sum of all times),
        ``MIT``, ``MLT``, ``MLI``, ``loss_start`` (``s_{window-1}``),
        ``loss_end`` and ``final_loss`` (both ``s_{n-1}``); with
        ``threshold`` also ``threshold``, ``time_to_threshold`` and
        ``iters_to_threshold``; with ``data_times`` also ``mean_data_time``.
        MLT, MLI and the threshold results are None where undefined.
    """
    if len(times) != len(losses):
        raise ValueError(f'times and losses differ in length: {len(times)} '
                         f'vs {len(losses)}.')
    if data_times is not None and len(data_times) != len(times):
        raise ValueError(f'data_times and times differ in length: '
                         f'{len(data_times)} vs {len(times)}.')
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ValueError(f'window={window!r} must be a positive integer.')
    n = len(times)
    if n < window + 1:
        raise ValueError(
            f'window={window} needs at least window + 1 = {window + 1} '
            f'iterations (a smoothed loss at the first full window and a '
            f'later one), got {n}.')
    if not isinstance(skip_first, int) or not 0 <= skip_first < n:
        raise ValueError(f'skip_first={skip_first!r} must be an integer in '
                         f'[0, {n - 1}] for {n} iterations.')
    times = _check_finite('times', times)
    losses = _check_finite('losses', losses)
    for i, t in enumerate(times):
        if t < 0:
            raise ValueError(f'times[{i}] is {t}: times cannot be negative.')
    if threshold is not None and not math.isfinite(threshold):
        raise ValueError(f'threshold={threshold} must be finite.')

    smoothed = smooth_losses(losses, window)  # smoothed[j] = s_{j+window-1}
    s_start, s_end = smoothed[0], smoothed[-1]
    decrease = s_start - s_end
    timed = times[skip_first:]
    metrics: Dict[str, Union[int, float, None]] = dict(
        num_iters=n,
        window=window,
        total_time=math.fsum(times),
        MIT=math.fsum(timed) / len(timed),
        MLT=math.fsum(times[window:]) / decrease if decrease > 0 else None,
        MLI=(n - window) / decrease if decrease > 0 else None,
        loss_start=s_start,
        loss_end=s_end,
        final_loss=s_end)
    if threshold is not None:
        metrics.update(
            threshold=float(threshold),
            time_to_threshold=None,
            iters_to_threshold=None)
        for j, s in enumerate(smoothed):
            if s <= threshold:
                k = j + window - 1
                metrics.update(
                    time_to_threshold=math.fsum(times[:k + 1]),
                    iters_to_threshold=k + 1)
                break
    if data_times is not None:
        data_times = _check_finite('data_times', data_times)
        metrics['mean_data_time'] = math.fsum(
            data_times[skip_first:]) / len(timed)
    return metrics
