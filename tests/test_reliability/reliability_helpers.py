"""Shared pieces of the reliability tests: the tiny latent config run for
six iterations, in a subprocess or in this process."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
import uuid

import torch

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
TINY = osp.join(ROOT, 'tests', 'data', 'tiny_lmd_klvae_photos.py')
sys.path.insert(0, osp.join(ROOT, 'tests', 'test_tools'))
from tool_helpers import run_dist_script, train_scalars  # noqa: E402,F401


def six_iterations(cache_dir, interval: int = 3, extra=()):
    """--cfg-options of a 6-iteration run saving every ``interval``."""
    return [
        f'train_dataloader.dataset.cache_dir={cache_dir}',
        'train_cfg.max_iters=6', 'train_cfg.val_interval=3',
        f'default_hooks.checkpoint.interval={interval}',
        'default_hooks.visualization.interval=100',
        'param_scheduler.1.T_max=5', 'param_scheduler.1.end=6', *extra
    ]


def fault_config(folder, *hooks: str) -> str:
    """A config file: the tiny config plus fault hooks of ``fault_hooks``
    (loaded as a plugin, as a third party's hooks would be)."""
    path = osp.join(str(folder), f'faults_{uuid.uuid4().hex[:6]}.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = [{TINY!r}]\n'
                "custom_imports = dict(imports=['fault_hooks'], "
                'allow_failed_imports=False)\n'
                f'custom_hooks = [{", ".join(hooks)}]\n')
    return path


def train_process(work_dir, options, args=(), check=True, timeout=300,
                  config=TINY):
    """``python tools/train.py CONFIG`` in a subprocess (one thread)."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=HERE)
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', config, '--work-dir',
         str(work_dir), *args, '--cfg-options', *options],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'train.py exited {proc.returncode}:\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}')
    return proc


def load_tool(path, name):
    """A tool script (``path`` from the repository root) as a module named
    ``name`` (``tools/test.py`` would clash with the standard library's
    ``test`` package under its own name)."""
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_here(work_dir, options, args=(), monkeypatch=None, config=TINY):
    """``tools/train.py CONFIG ...``'s ``main()`` in this process."""
    argv = ['train.py', config, '--work-dir', str(work_dir), *args,
            '--cfg-options', f'experiment_name=run_{uuid.uuid4().hex[:8]}',
            *options]
    monkeypatch.setattr(sys, 'argv', argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        load_tool('tools/train.py', 'lmd_train_tool').main()
    finally:
        torch.set_num_threads(threads)


def load(path):
    """A toolkit training checkpoint (the safe loader with the toolkit's
    allow-list)."""
    from lmd_toolkit.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    return torch.load(path, map_location='cpu', weights_only=True)


def same_weights(a, b) -> bool:
    sa, sb = load(a)['state_dict'], load(b)['state_dict']
    return sa.keys() == sb.keys() and all(
        torch.equal(sa[k], sb[k]) for k in sa)
