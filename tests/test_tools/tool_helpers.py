import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(ROOT, 'tests', 'data', 'tiny_lmd_photos.py')


def run_tool(args, env=None, timeout=600):
    """Run ``python <args>`` from the repository root; fail with its
    output when it fails."""
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault('OMP_NUM_THREADS', '1')
    proc = subprocess.run([sys.executable, *args],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          env=full_env,
                          timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(args)} exited {proc.returncode}:\n'
                    f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def train_scalars(work_dir):
    """Training records of the last run in ``work_dir``'s scalars.json."""
    runs = sorted(d for d in os.listdir(work_dir)
                  if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    path = osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')
    with open(path) as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if 'loss' in r]
