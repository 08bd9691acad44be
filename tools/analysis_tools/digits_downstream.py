"""Pretrain a tiny LMD on the digits images, then probe and fine-tune it.

Prints linear-probe accuracy of the pretrained vs a randomly initialised
encoder, and fine-tuning vs linear probing (top-1 / top-5 on the 359 held-out
digits, MAT@1 / MAT@5 from ``AccuracyIncreaseTimeHook``)::

    python tools/analysis_tools/digits_downstream.py --work-dir work_dirs/digits

Every run is ``tools/train.py`` on a config of ``configs/`` (a subprocess, its
log in the run's work dir); ``--pretrained CKPT`` skips the pretraining.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRETRAIN = 'configs/lmd_vit-tiny_pixel_digits_cs.py'
LINPROBE = 'configs/downstream/latent_vit-tiny_pixel_linprobe_digits.py'
FINETUNE = 'configs/downstream/latent_vit-tiny_pixel_finetune_digits.py'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/digits_downstream')
    parser.add_argument('--pretrained', help='skip pretraining, use CKPT')
    parser.add_argument('--pretrain-iters', type=int, default=600)
    parser.add_argument('--epochs', type=int, default=20,
                        help='epochs of every probe / fine-tune run')
    parser.add_argument('--val-interval', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def train(config: str, work_dir: str, options: List[str]) -> float:
    """Run tools/train.py; return its wall-clock seconds."""
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
           '--work-dir', work_dir, '--cfg-options', *options]
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    os.makedirs(work_dir, exist_ok=True)
    print(f'>> {osp.basename(work_dir)}: {" ".join(cmd[1:])}', flush=True)
    start = time.perf_counter()
    with open(osp.join(work_dir, 'stdout.log'), 'w') as log:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f'{config} failed; see {work_dir}/stdout.log')
    return time.perf_counter() - start


def result(work_dir: str) -> Dict[str, float]:
    with open(osp.join(work_dir, 'accuracy_time.json')) as f:
        record = json.load(f)
    last = record['series'][-1]
    return dict(top1=last['top1'], top5=last['top5'],
                mat1=record['MAT@1'], mat5=record['MAT@5'],
                train_s=last['train_seconds'])


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    work_dir = osp.abspath(args.work_dir)
    ckpt = args.pretrained
    if ckpt is None:
        pre_dir = osp.join(work_dir, 'pretrain')
        n = args.pretrain_iters
        train(PRETRAIN, pre_dir, [
            f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
            f'default_hooks.checkpoint.interval={n}',
            f'param_scheduler.1.T_max={max(n - 100, 1)}',
            f'param_scheduler.1.end={n}', f'randomness.seed={args.seed}'
        ])
        ckpt = osp.join(pre_dir, f'iter_{n}.pth')
    common = [
        f'train_cfg.max_epochs={args.epochs}',
        f'train_cfg.val_interval={args.val_interval}',
        f'default_hooks.checkpoint.interval={args.epochs}',
        f'randomness.seed={args.seed}'
    ]
    runs = {
        'linear probe, pretrained': (LINPROBE, ckpt),
        'linear probe, random init': (LINPROBE, None),
        'fine-tune, pretrained': (FINETUNE, ckpt),
    }
    table = {}
    for name, (config, weights) in runs.items():
        run_dir = osp.join(work_dir, name.replace(', ', '_').replace(' ', '-'))
        init = (f'model.backbone.init_cfg.checkpoint={weights}'
                if weights else 'model.backbone.init_cfg=None')
        options = common + [init]
        if config == FINETUNE:  # keep the 2-epoch warm-up, cosine to the end
            options.append(f'param_scheduler.1.T_max={args.epochs - 2}')
            options.append(f'param_scheduler.1.end={args.epochs}')
        else:
            options.append(f'param_scheduler.0.T_max={args.epochs}')
            options.append(f'param_scheduler.0.end={args.epochs}')
        train(config, run_dir, options)
        table[name] = result(run_dir)

    print(f'\nDigits (359 validation images), encoder {ckpt or "-"}')
    print(f'{"run":28s} {"top-1":>7s} {"top-5":>7s} {"MAT@1":>8s} '
          f'{"MAT@5":>8s} {"train s":>8s}')
    for name, r in table.items():
        def fmt(v):
            return '    n/a' if v is None else f'{v:8.3f}'
        print(f'{name:28s} {r["top1"]:7.2f} {r["top5"]:7.2f} '
              f'{fmt(r["mat1"])} {fmt(r["mat5"])} {r["train_s"]:8.1f}')
    from lmd_toolkit.utils.fileio import atomic_write
    with atomic_write(osp.join(work_dir, 'digits_downstream.json')) as f:
        json.dump(dict(pretrained=ckpt, runs=table), f, indent=2)
    return table


if __name__ == '__main__':
    main()
