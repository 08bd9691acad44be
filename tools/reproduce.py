"""Reproduce the shape of the paper's Table 1 and Table 5 on one budget.

    python tools/reproduce.py [--suite photos|in1k] [--iters N]
        [--rows cs ps us fixed pixel unet mae] [--work-dir DIR]
        [--stage1-iters N | --projector-checkpoint CKPT] [--window W]
        [--num-crops N] [--cache-dir DIR] [--cfg-options KEY=VALUE ...]

Trains every row on the same data and the same number of iterations, one
after the other in this process (each a plain mmengine Runner, as
``tools/train.py`` builds it), with the ``TrainingEfficiencyHook`` of
``configs/_base_/efficiency.py`` added to its ``custom_hooks``:

=======  ===============================================================
cs       LMD-CS: latent projector, ViT, cosine mask-ratio schedule
ps       LMD-PS: the same, piecewise schedule
us       LMD-US: the same, uniform schedule
fixed    w/o MDS: the same, fixed ratio 0.75
pixel    w/o LSP: identity projector (pixels), cosine schedule
unet     w/o MAE: U-Net on the full masked latent, cosine schedule
mae      baseline: mmpretrain's MAE on pixels (fixed 0.75)
=======  ===============================================================

The ``photos`` suite uses the embedded photos and the tiny KL-VAE of
``configs/projectors/klvae_tiny-f8_photos.py`` (stage 1 is trained first,
or reused); ``in1k`` uses the ViT-B configs and the official kl-f8 weights
named in them. Writes to ``--work-dir``: one sub-folder per row,
``table1.{md,csv}`` (LMD-CS/PS/US, their mean, MAE), ``table5.{md,csv}``
(LMD, w/o LSP, w/o MAE, w/o MDS with the overall mean of MIT / MLT / MLI
and its difference from LMD's, as the paper's Table 5) and
``curves.png`` (``tools/analysis_tools/plot_curves.py``). MIT / MLT / MLI:
``docs/en/metrics.md``. PSNR@0.75: image-space reconstruction PSNR of the
held-out crops at mask ratio 0.75 (LMD rows with a validation set).
cache_s: seconds a row spent building (or finding) its latent cache before
training, outside MIT (the latent rows share one cache; the first builds it).
"""
import argparse
import csv
import json
import math
import os
import os.path as osp
import subprocess
import sys
import traceback
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402

from lmd_toolkit.apis.pipelines import (ensure_stage1, set_budget,  # noqa: E402,E501
                                        train_in_process)
from lmd_toolkit.utils.fileio import atomic_write  # noqa: E402
from lmd_toolkit.utils.launch import (BLOCKS_DIR, load_block,  # noqa: E402
                                      load_config)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: TrainingEfficiencyHook, added to every row.
EFFICIENCY_BLOCK = osp.join(BLOCKS_DIR, 'efficiency.py')


def _scheduler(cfg: dict) -> dict:
    """Override of the mask-ratio scheduler."""
    return dict(default_hooks=dict(mask_ratio=dict(
        scheduler=dict(_delete_=True, **cfg))))


CS = dict(type='CosineMaskRatio', min_ratio=0.15, max_ratio=0.75)
PS = dict(type='PiecewiseMaskRatio')
US = dict(type='UniformMaskRatio', min_ratio=0.15, max_ratio=0.75)
FIXED = dict(type='FixedMaskRatio', ratio=0.75)

#: row key -> (label, role, config under ``configs/``, overrides).
SUITES: Dict[str, dict] = {
    'photos': dict(
        stage1='configs/projectors/klvae_tiny-f8_photos.py',
        rows={
            'cs': ('LMD-CS', 'lmd_vit-tiny_klvae_photos_cs.py', {}),
            'ps': ('LMD-PS', 'lmd_vit-tiny_klvae_photos_cs.py',
                   _scheduler(PS)),
            'us': ('LMD-US', 'lmd_vit-tiny_klvae_photos_cs.py',
                   _scheduler(US)),
            'fixed': ('w/o MDS', 'lmd_vit-tiny_klvae_photos_cs.py',
                      _scheduler(FIXED)),
            'pixel': ('w/o LSP', 'lmd_vit-tiny_pixel_photos_cs.py', {}),
            'unet': ('w/o MAE', 'lmd_unet_klvae_photos_cs.py', {}),
            'mae': ('MAE', 'mae_vit-tiny_pixel_photos.py', {}),
        }),
    'in1k': dict(
        stage1=None,
        rows={
            'cs': ('LMD-CS', 'lmd_vit-b_in1k_cs.py', {}),
            'ps': ('LMD-PS', 'lmd_vit-b_in1k_ps.py', {}),
            'us': ('LMD-US', 'lmd_vit-b_in1k_us.py', {}),
            'fixed': ('w/o MDS', 'lmd_vit-b_in1k_fixed.py', {}),
            'pixel': ('w/o LSP', 'lmd_vit-b_pixel_in1k_cs.py', {}),
            'unet': ('w/o MAE', 'lmd_unet_in1k_cs.py', {}),
            'mae': ('MAE', 'mae_vit-b_pixel_in1k.py', {}),
        }),
}
ROW_KEYS = ('cs', 'ps', 'us', 'fixed', 'pixel', 'unet', 'mae')
LATENT_ROWS = ('cs', 'ps', 'us', 'fixed', 'unet')
TABLE1 = ('cs', 'ps', 'us')  # + their mean + mae
TABLE5 = ('cs', 'pixel', 'unet', 'fixed')  # cs is "LMD"
METRICS = ('MIT', 'MLT', 'MLI', 'final_loss', 'PSNR@0.75', 'cache_s')
RATIOS = dict(cs='cosine 0.15→0.75', ps='piecewise 0.15/0.40/0.75',
              us='uniform 0.15→0.75', mean='', mae='fixed 0.75')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--suite', choices=sorted(SUITES), default='photos')
    parser.add_argument('--iters', type=int, default=None,
                        help='iterations of every row (default: each '
                        "config's own)")
    parser.add_argument('--rows', nargs='+', choices=ROW_KEYS,
                        default=list(ROW_KEYS))
    parser.add_argument('--work-dir', default=None,
                        help='default: work_dirs/reproduce_<suite>')
    parser.add_argument('--stage1-iters', type=int, default=None,
                        help='photos suite: stage-1 budget (default: the '
                        "config's); an existing checkpoint is reused")
    parser.add_argument('--projector-checkpoint', default=None,
                        help='photos suite: use this stage-1 checkpoint '
                        '(e.g. the demo\'s work_dirs/demo/stage1/iter_N.pth) '
                        'instead of training one')
    parser.add_argument('--window', type=int, default=None,
                        help='loss smoothing window of MLT / MLI (default: '
                        'max(2, iters // 20))')
    parser.add_argument('--num-crops', type=int, default=None,
                        help='photos suite: training crops of every row '
                        "(default: the configs' 2048)")
    parser.add_argument('--cache-dir', default=None,
                        help='root folder of the latent caches of the latent '
                        "rows (default: the configs' data/latent_cache; "
                        'rows with the same projector and data share one)')
    parser.add_argument('--eval-mask-ratio', type=float, default=0.75,
                        help='mask ratio of the PSNR column')
    parser.add_argument('--fail-fast', action='store_true',
                        help='stop at the first failing row')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every row')
    return parser.parse_args(argv)


def run_row(key: str, suite: dict, args: argparse.Namespace,
            projector_ckpt: Optional[str]) -> str:
    """Train one row; returns its work dir."""
    label, config, overrides = suite['rows'][key]
    work_dir = osp.join(args.work_dir, key)
    cfg = load_config(osp.join(ROOT, 'configs', config), work_dir=work_dir)
    cfg.merge_from_dict(overrides)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if projector_ckpt is not None and key in LATENT_ROWS:
        cfg.model.projector.checkpoint = projector_ckpt
    dataset = cfg.train_dataloader.dataset
    latent_first = dataset.get('type') == 'LatentCacheDataset'
    if args.cache_dir is not None and latent_first:
        dataset.cache_dir = args.cache_dir
    if args.num_crops is not None:
        (dataset.dataset if latent_first else dataset).num_crops = \
            args.num_crops
    if args.iters is not None:
        set_budget(cfg, args.iters)
    iters = cfg.train_cfg.max_iters
    # configs/_base_/efficiency.py for this row's length: the hook, its
    # loss window and the iterations MIT leaves out.
    hooks = load_block(EFFICIENCY_BLOCK, max_iters=iters).custom_hooks
    if args.window is not None:
        hooks[0].window = args.window
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + hooks
    if cfg.model.type == 'LatentMaskingDiffusion':
        cfg.model.eval_mask_ratio = args.eval_mask_ratio
    print_log(f'reproduce: {label} ({key}): {config}, {iters} iterations, '
              f'work dir {work_dir}', logger='current')
    train_in_process(cfg)
    return work_dir


def read_row(work_dir: str) -> Dict[str, Optional[float]]:
    """MIT / MLT / MLI / final loss (efficiency.json) and the last
    validation PSNR (mmengine's scalars.json) of a finished row."""
    path = osp.join(work_dir, 'efficiency.json')
    with open(path) as f:
        eff = json.load(f)
    metrics = eff.get('metrics', {})
    if 'error' in metrics:
        raise RuntimeError(f'{path}: {metrics["error"]}')
    out = {k: metrics.get(k) for k in ('MIT', 'MLT', 'MLI', 'final_loss')}
    out['PSNR@0.75'] = _last_val_psnr(work_dir)
    out['cache_s'] = _cache_seconds(work_dir)
    return out


def _cache_seconds(work_dir: str) -> Optional[float]:
    """Seconds the row spent building (or finding) its latent cache before
    training (``latent_cache.json`` of ``LatentCacheHook``); None for rows
    without one. Not part of MIT."""
    path = osp.join(work_dir, 'latent_cache.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return float(json.load(f)['seconds'])


def _last_val_psnr(work_dir: str) -> Optional[float]:
    runs = sorted(d for d in os.listdir(work_dir)
                  if osp.isfile(osp.join(work_dir, d, 'vis_data',
                                         'scalars.json')))
    psnr = None
    for run in runs:  # a resumed row has several; the last value wins
        with open(osp.join(work_dir, run, 'vis_data', 'scalars.json')) as f:
            for line in f:
                record = json.loads(line)
                if 'PSNR' in record and 'loss' not in record:
                    psnr = float(record['PSNR'])
    return psnr


def _mean(values: List[Optional[float]]) -> Optional[float]:
    """Mean of ``values``; None if any is undefined."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def _delta(value: Optional[float], ref: Optional[float]) -> Optional[float]:
    """Relative change in percent, None where undefined."""
    if value is None or ref is None or ref == 0:
        return None
    return 100.0 * (value - ref) / abs(ref)


def build_tables(results: Dict[str, dict], labels: Dict[str, str]
                 ) -> Dict[str, List[List[str]]]:
    """Table 1 and Table 5 as lists of rows (first row = header).

    ``results`` maps row keys to their metrics, or to ``{'error': msg}``
    for rows that failed; missing or failed rows keep their line with the
    reason, so every table has every row. Table 5 follows the paper's: an
    overall mean (here of MIT, MLT and MLI; the paper also averages
    MAT@1 / MAT@5 of fine-tuning) and its difference from LMD's.
    """
    ok = {k: r for k, r in results.items() if r and 'error' not in r}

    def values(r: Optional[dict], keys: tuple) -> List[str]:
        if r is None or 'error' in r:
            reason = 'not run' if r is None else f"failed: {r['error']}"
            return [reason] + [''] * (len(keys) - 1)
        return [_fmt(r.get(k)) for k in keys]

    # Table 1: the three schedules, their mean, and MAE.
    t1 = [['method', 'mask ratio', *METRICS, 'ΔMLT vs MAE (%)']]
    lmd_rows = [ok[k] for k in TABLE1 if k in ok]
    mean1 = ({k: _mean([r.get(k) for r in lmd_rows]) for k in METRICS}
             if len(lmd_rows) == len(TABLE1) else None)
    mae_mlt = ok.get('mae', {}).get('MLT')
    for key, row in [*[(k, results.get(k)) for k in TABLE1],
                     ('mean', mean1), ('mae', results.get('mae'))]:
        label = 'LMD mean (CS, PS, US)' if key == 'mean' else labels[key]
        delta = _delta(row.get('MLT'), mae_mlt) if row and \
            'error' not in row else None
        t1.append([label, RATIOS[key], *values(row, METRICS),
                   'n/a' if delta is None else f'{delta:+.1f}'])

    # Table 5: LMD and its ablations; overall mean and its delta vs LMD.
    def overall(r: Optional[dict]) -> Optional[float]:
        if not r or 'error' in r:
            return None
        return _mean([r.get(k) for k in ('MIT', 'MLT', 'MLI')])

    ref = overall(ok.get('cs'))
    t5 = [['#', 'setting', 'overall mean', 'Δ', *METRICS]]
    for i, key in enumerate(TABLE5, 1):
        row = results.get(key)
        mean = overall(row)
        delta = '-' if key == 'cs' else (
            'n/a' if mean is None or ref is None else f'{mean - ref:+.3g}')
        name = 'LMD (CS)' if key == 'cs' else labels[key]
        if row is None or 'error' in row:
            t5.append([str(i), name, *values(row, ('a', 'b')),
                       *[''] * len(METRICS)])
        else:
            t5.append([str(i), name, _fmt(mean), delta,
                       *values(row, METRICS)])
    return {'table1': t1, 'table5': t5}


def _fmt(v: Optional[float]) -> str:
    """4 significant digits; 'n/a' for undefined values."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return 'n/a'
    return f'{v:.4g}'


def write_tables(tables: Dict[str, List[List[str]]], out_dir: str) -> str:
    """``<name>.md`` and ``<name>.csv`` per table; returns the Markdown."""
    text = []
    for name, rows in tables.items():
        with atomic_write(osp.join(out_dir, f'{name}.csv')) as f:
            csv.writer(f).writerows(rows)
        md = ['| ' + ' | '.join(rows[0]) + ' |',
              '|' + '---|' * len(rows[0])]
        md += ['| ' + ' | '.join(r) + ' |' for r in rows[1:]]
        title = {'table1': 'Table 1: LMD schedules vs MAE',
                 'table5': 'Table 5: ablations'}[name]
        block = f'### {title}\n\n' + '\n'.join(md) + '\n'
        with atomic_write(osp.join(out_dir, f'{name}.md')) as f:
            f.write(block)
        text.append(block)
    return '\n'.join(text)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    suite = SUITES[args.suite]
    args.work_dir = args.work_dir or f'work_dirs/reproduce_{args.suite}'
    os.makedirs(args.work_dir, exist_ok=True)
    labels = {k: v[0] for k, v in suite['rows'].items()}

    projector_ckpt = args.projector_checkpoint
    if projector_ckpt is None and suite['stage1'] and any(
            k in LATENT_ROWS for k in args.rows):
        projector_ckpt = ensure_stage1(
            osp.join(ROOT, suite['stage1']),
            osp.join(args.work_dir, 'stage1'), args.stage1_iters)

    results: Dict[str, dict] = {}
    done: List[str] = []
    for key in args.rows:
        try:
            work_dir = run_row(key, suite, args, projector_ckpt)
            results[key] = read_row(work_dir)
            done.append(key)
        except Exception as exc:  # one failing row must not lose the rest
            if args.fail_fast:
                raise
            traceback.print_exc()
            results[key] = {'error': f'{type(exc).__name__}: {exc}'[:200]}

    text = write_tables(build_tables(results, labels), args.work_dir)
    with atomic_write(osp.join(args.work_dir, 'results.json')) as f:
        json.dump(dict(suite=args.suite, iters=args.iters, rows=results), f,
                  indent=2)
    if done:
        subprocess.run([
            sys.executable,
            osp.join(ROOT, 'tools/analysis_tools/plot_curves.py'),
            *[osp.join(args.work_dir, k) for k in done], '--labels',
            *[labels[k] for k in done], '--out',
            osp.join(args.work_dir, 'curves.png')
        ], check=True)
    print(text)
    print(f'Tables, results.json and curves.png in {args.work_dir}')


if __name__ == '__main__':
    main()
