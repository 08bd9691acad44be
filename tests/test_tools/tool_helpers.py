import json
import os
import os.path as osp
import socket
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


def scalars(work_dir):
    """All records of the last run in ``work_dir``'s scalars.json."""
    runs = sorted(d for d in os.listdir(work_dir)
                  if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    path = osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')
    with open(path) as f:
        return [json.loads(line) for line in f]


def train_scalars(work_dir):
    """Training records of the last run in ``work_dir``'s scalars.json."""
    return [r for r in scalars(work_dir) if 'loss' in r]


def run_dist_script(args, timeout=600):
    """Run ``bash tools/dist_*.sh ARGS`` on CPU with a free port; return the
    completed process (the caller checks its exit code and output)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(port),
               OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    return subprocess.run(['bash', *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
