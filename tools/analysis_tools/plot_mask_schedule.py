"""Plot every registered mask-ratio scheduler (the paper's Fig. 5) to a PNG.

    python tools/analysis_tools/plot_mask_schedule.py --out schedules.png
    python tools/analysis_tools/plot_mask_schedule.py \
        --cfg-options "custom_imports.imports=[my_pkg]"

Plugins registered through ``custom_imports`` (in ``--cfg-options`` or in an
optional ``--config``) are plotted too.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.utils import import_modules_from_strings  # noqa: E402

from lmd_toolkit.engine.hooks import build_mask_scheduler  # noqa: E402
from lmd_toolkit.registry import MASK_SCHEDULERS  # noqa: E402
from lmd_toolkit.utils import register_all_modules  # noqa: E402
from lmd_toolkit.utils.fileio import atomic_write  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', help='optional config (custom_imports)')
    parser.add_argument(
        '--max-iters', type=int, default=1000, help='iterations of the run')
    parser.add_argument(
        '--schedulers', nargs='+', help='registered names (default: all)')
    parser.add_argument(
        '--out', default='mask_schedules.png', help='output PNG file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='e.g. "custom_imports.imports=[my_pkg]"')
    return parser.parse_args()


def schedule_curves(names: list, max_iters: int) -> dict:
    """``{name: [ratio(t, max_iters) for t in range(max_iters)]}`` for the
    registered schedulers ``names``, built with their defaults."""
    curves = {}
    for name in names:
        scheduler = build_mask_scheduler(dict(type=name))
        curves[name] = [scheduler.ratio(t, max_iters) for t in range(max_iters)]
    return curves


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config) if args.config else Config()
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    register_all_modules(init_default_scope=False)
    MASK_SCHEDULERS.import_from_location()

    names = args.schedulers or sorted(MASK_SCHEDULERS.module_dict)
    curves = schedule_curves(names, args.max_iters)

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name, ratios in curves.items():
        ax.plot(range(args.max_iters), ratios, label=name)
    ax.set_xlabel(f'iteration (of {args.max_iters})')
    ax.set_ylabel('mask ratio')
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title('Mask-ratio schedules')
    fig.tight_layout()
    with atomic_write(args.out, 'wb') as f:  # the format follows the suffix
        fig.savefig(f, format=osp.splitext(args.out)[1][1:].lower() or 'png')
    print(f'{len(curves)} schedules ({", ".join(curves)}) -> {args.out}')


if __name__ == '__main__':
    main()
