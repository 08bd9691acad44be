"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [options]``.

Runs the config's ``test_dataloader`` / ``test_evaluator`` and writes the
metrics to ``<work_dir>/test_results.json``.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402
from mmengine.dist import is_main_process  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from lmd_toolkit.utils.launch import (destroy_distributed,  # noqa: E402
                                      load_config)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test an lmd-toolkit model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for logs and results')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. test_dataloader.batch_size=8')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='job launcher (dist_test.sh and slurm_test.sh set it)')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'Checkpoint not found: {args.checkpoint}')
    cfg = load_config(args.config, args.cfg_options, args.launcher,
                      args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if is_main_process():
        out = osp.join(runner.work_dir, 'test_results.json')
        with open(out, 'w') as f:
            json.dump(
                dict(
                    config=args.config,
                    checkpoint=args.checkpoint,
                    metrics={k: float(v)
                             for k, v in metrics.items()}),
                f,
                indent=2)
        runner.logger.info(f'Metrics written to {out}')
    destroy_distributed()


if __name__ == '__main__':
    main()
