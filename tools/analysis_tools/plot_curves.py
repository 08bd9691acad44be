"""Plot loss and mask ratio of training runs against iterations and seconds.

    python tools/analysis_tools/plot_curves.py work_dirs/lmd_cs work_dirs/mae \
        --labels LMD MAE --out curves.png --window 20

One figure, one row per ``--keys`` entry (default ``loss mask_ratio``), the
value against the iteration (left) and against training seconds (right, the
running sum of the per-iteration ``time``); one line per work dir. Each work
dir is read from ``<work_dir>/efficiency.json`` (``TrainingEfficiencyHook``,
every iteration) or, without it, from mmengine's
``<work_dir>/<newest timestamp>/vis_data/scalars.json``. The loss of
``efficiency.json`` is smoothed with a trailing moving average of
``--window`` iterations; ``scalars.json`` holds only every logging
iteration's values, already averaged by mmengine's LogProcessor, so they are
plotted as logged, and its seconds are approximate (the logged mean ``time``
times the iterations since the previous log line).
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from lmd_toolkit.evaluation.efficiency import smooth_losses  # noqa: E402
from lmd_toolkit.utils.fileio import atomic_write  # noqa: E402

EFFICIENCY_FILE = 'efficiency.json'
SMOOTHED_KEYS = ('loss', )  # per-iteration noise; other keys as recorded


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+', help='work dirs of runs')
    parser.add_argument(
        '--labels', nargs='+', help='legend labels (default: dir names)')
    parser.add_argument('--out', default='curves.png', help='output PNG')
    parser.add_argument(
        '--window',
        type=int,
        default=20,
        help='loss moving-average window in iterations (efficiency.json)')
    parser.add_argument(
        '--keys',
        nargs='+',
        default=['loss', 'mask_ratio'],
        help='recorded values to plot, one row each')
    return parser.parse_args()


def _newest_scalars(work_dir: str) -> Optional[str]:
    """``<work_dir>/<timestamp>/vis_data/scalars.json`` of the newest run
    (timestamps sort by name), None if there is none."""
    candidates = sorted(
        name for name in os.listdir(work_dir)
        if osp.isfile(osp.join(work_dir, name, 'vis_data', 'scalars.json')))
    if not candidates:
        return None
    return osp.join(work_dir, candidates[-1], 'vis_data', 'scalars.json')


def load_run(work_dir: str) -> Dict[str, list]:
    """Per-iteration records of one run.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        dict: Lists of equal length: ``iter``, ``wall`` (training seconds
        so far) and every recorded value (``loss``, ``mask_ratio``,
        ``time``, ...; None where missing), plus ``source``: the file read.
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'{work_dir} is not a directory.')
    path = osp.join(work_dir, EFFICIENCY_FILE)
    if osp.isfile(path):
        with open(path) as f:
            run = {k: list(v) for k, v in json.load(f)['records'].items()}
        run['source'] = path
        return run
    path = _newest_scalars(work_dir)
    if path is None:
        raise FileNotFoundError(
            f'{work_dir} has neither {EFFICIENCY_FILE} (written by '
            'TrainingEfficiencyHook) nor <timestamp>/vis_data/scalars.json '
            '(written by mmengine\'s LoggerHook).')
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = [r for r in rows if 'loss' in r and 'iter' in r]  # training rows
    keys = sorted({key for r in rows for key in r})
    run = {key: [r.get(key) for r in rows] for key in keys}
    wall, previous, total = [], 0, 0.0
    for r in rows:  # logged mean time x iterations since the last line
        total += (r.get('time') or 0.0) * (r['iter'] - previous)
        previous = r['iter']
        wall.append(total)
    run['wall'] = wall
    run['source'] = path
    return run


def _series(run: Dict[str, list], key: str, window: int) -> tuple:
    """``(iters, seconds, values)`` of ``key`` without missing values,
    smoothed for the keys of SMOOTHED_KEYS read from efficiency.json."""
    points = [(i, w, v)
              for i, w, v in zip(run['iter'], run['wall'], run.get(key, []))
              if v is not None and i is not None and w is not None]
    if not points:
        return [], [], []
    iters, walls, values = (list(column) for column in zip(*points))
    if key in SMOOTHED_KEYS and run['source'].endswith(EFFICIENCY_FILE):
        width = min(window, len(values))
        values = smooth_losses(values, width)
        iters, walls = iters[width - 1:], walls[width - 1:]
    return iters, walls, values


def plot_runs(runs: Sequence[Dict[str, list]],
              labels: Sequence[str],
              out: str,
              window: int = 20,
              keys: Sequence[str] = ('loss', 'mask_ratio')) -> str:
    """Draw ``keys`` of ``runs`` against iterations and seconds into ``out``.

    Args:
        runs (Sequence[dict]): Runs as returned by :func:`load_run`.
        labels (Sequence[str]): Legend label of every run.
        out (str): Output PNG path.
        window (int): Loss moving-average window (efficiency.json runs).
            Defaults to 20.
        keys (Sequence[str]): Values to plot, one row each.
            Defaults to ('loss', 'mask_ratio').

    Returns:
        str: ``out``.
    """
    if len(labels) != len(runs):
        raise ValueError(f'{len(labels)} labels for {len(runs)} runs.')
    if window < 1:
        raise ValueError(f'--window={window} must be >= 1.')
    fig, axes = plt.subplots(
        len(keys), 2, figsize=(11, 3.6 * len(keys)), dpi=100, squeeze=False)
    for row, key in zip(axes, keys):
        for run, label in zip(runs, labels):
            iters, walls, values = _series(run, key, window)
            if values:
                row[0].plot(iters, values, label=label)
                row[1].plot(walls, values, label=label)
        smoothed = ' (smoothed)' if key in SMOOTHED_KEYS else ''
        for ax, xlabel in zip(row, ('iteration', 'training seconds')):
            ax.set_xlabel(xlabel)
            ax.set_ylabel(key + smoothed)
            ax.grid(alpha=0.3)
            if ax.get_lines():
                ax.legend(fontsize=8)
            else:
                ax.text(0.5, 0.5, f'no run recorded {key!r}',
                        ha='center', va='center', transform=ax.transAxes)
    fig.tight_layout()
    with atomic_write(out, 'wb') as f:  # the format follows the suffix
        fig.savefig(f, format=osp.splitext(out)[1][1:].lower() or 'png')
    plt.close(fig)
    return out


def main() -> None:
    args = parse_args()
    labels = args.labels or [
        osp.basename(osp.normpath(d)) for d in args.work_dirs
    ]
    if len(labels) != len(args.work_dirs):
        sys.exit(f'error: {len(labels)} --labels for '
                 f'{len(args.work_dirs)} work dirs.')
    try:
        runs = [load_run(d) for d in args.work_dirs]
    except FileNotFoundError as err:
        sys.exit(f'error: {err}')
    for run, label in zip(runs, labels):
        print(f'{label}: {len(run["iter"])} records from {run["source"]}')
    print(plot_runs(runs, labels, args.out, args.window, args.keys))


if __name__ == '__main__':
    main()
