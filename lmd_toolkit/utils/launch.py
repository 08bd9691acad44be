"""Config handling shared by ``tools/train.py`` and ``tools/test.py``."""
import argparse
import ast
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction  # noqa: F401 (re-export)
from mmengine.logging import print_log
from mmengine.utils import import_modules_from_strings

from .compat import (fill_model_wrapper_cfg, init_cpu_distributed,
                     init_single_process_group)
from .setup_env import register_all_modules


def runner_arg_parser(description: str, launcher_tool: str,
                      overrides_example: str) -> argparse.ArgumentParser:
    """The command line ``tools/train.py`` and ``tools/test.py`` share:
    ``config``, ``--work-dir``, ``--cfg-options``, ``--launcher`` and
    ``--local-rank``. The tool adds its own arguments.

    Args:
        description (str): The tool's one-line description.
        launcher_tool (str): ``'train'`` or ``'test'``: the
            ``dist_<tool>.sh`` / ``slurm_<tool>.sh`` that set ``--launcher``.
        overrides_example (str): An example of ``--cfg-options``.

    Returns:
        argparse.ArgumentParser: The parser; ``config`` is its first
        positional argument.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help=f'override config keys, e.g. {overrides_example}')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help=f'job launcher (dist_{launcher_tool}.sh and '
        f'slurm_{launcher_tool}.sh set it)')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    return parser


def load_config(config: str,
                cfg_options: Optional[dict] = None,
                launcher: str = 'none',
                work_dir: Optional[str] = None) -> Config:
    """Read a config, merge ``--cfg-options``, import ``custom_imports``
    (also those given on the command line), apply the compatibility shims
    and, for distributed runs on CPU, initialise the gloo process group.

    Args:
        config (str): Path of the config file.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        launcher (str): ``'none'``, ``'pytorch'`` or ``'slurm'``.
        work_dir (str, optional): ``--work-dir``; defaults to
            ``work_dirs/<config name>``.

    Returns:
        Config: The config, ready for ``Runner.from_cfg``.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'Config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    register_all_modules(init_default_scope=False)

    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    if launcher != 'none':
        init_cpu_distributed(launcher)
        fill_model_wrapper_cfg(cfg)
    elif uses_sharding(cfg):
        # FSDP needs a process group even for one process.
        init_single_process_group()
    return cfg


def uses_sharding(cfg: Config) -> bool:
    """Whether the config trains with an FSDP strategy
    (``configs/_base_/strategies/fsdp.py``)."""
    strategy = cfg.get('strategy') or {}
    name = strategy.get('type', '') if isinstance(strategy, dict) else ''
    name = name if isinstance(name, str) else name.__name__
    return cfg.get('runner_type') == 'FlexibleRunner' and 'FSDP' in name


def build_runner(cfg: Config):
    """mmengine's ``Runner``, or the runner ``cfg.runner_type`` names
    (``FlexibleRunner`` for FSDP), built from ``cfg``."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if cfg.get('runner_type') is None:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def destroy_distributed() -> None:
    """Tear down the process group before the interpreter exits. Without it
    gloo's threads can outlive the group and abort the process at exit
    (``terminate called without an active exception``)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


#: ``configs/_base_/`` of this checkout: the config blocks the tools merge.
BLOCKS_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    '_base_')
#: ``--amp`` merges this block (``optim_wrapper.type``).
AMP_BLOCK = osp.join(BLOCKS_DIR, 'precision', 'amp.py')
MIXED_PRECISION_WRAPPERS = ('MixedPrecisionOptimWrapper', 'AmpOptimWrapper',
                            'AutocastOptimWrapper')


def load_block(path: str, **params: int) -> Config:
    """Read a config block (a ``configs/_base_/`` file), with some of its
    top-level numbers set.

    A block states its parameter once, as a top-level assignment (e.g.
    ``max_iters = 2000`` in ``schedules/iter_budget.py``) and derives the
    rest from it. ``load_block(path, max_iters=40)`` reads the file with that
    one assignment set to 40, so everything derived follows.

    Args:
        path (str): The block file.
        **params (int): Top-level names of the block and their values.

    Returns:
        Config: The block.
    """
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    missing = set(params)
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in params):
            node.value = ast.Constant(params[node.targets[0].id])
            missing.discard(node.targets[0].id)
    if missing:
        raise KeyError(f'{path} has no top-level {", ".join(sorted(missing))}'
                       ' to set.')
    return Config.fromstring(ast.unparse(tree), '.py')


def merge_amp_block(cfg: Config) -> None:
    """``tools/train.py --amp``: merge ``configs/_base_/precision/amp.py``
    (``optim_wrapper.type='MixedPrecisionOptimWrapper'``, which picks bf16
    autocast or fp16 loss scaling when the Runner builds it), as if the
    config listed that file last in ``_base_``.

    A config that already names a mixed-precision wrapper is kept; one with
    another wrapper type than ``OptimWrapper`` is refused. Logged.

    Args:
        cfg (Config): The config; ``cfg.optim_wrapper`` is edited in place.
    """
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in MIXED_PRECISION_WRAPPERS:
        print_log(f'--amp: the config already uses {wrapper}.',
                  logger='current')
        return
    if wrapper != 'OptimWrapper':
        raise ValueError(f'--amp replaces optim_wrapper.type=OptimWrapper, '
                         f'but the config sets {wrapper!r}; set the mixed-'
                         'precision wrapper in the config instead.')
    cfg.merge_from_dict(Config.fromfile(AMP_BLOCK).to_dict())
    print_log(f'--amp: merged {osp.relpath(AMP_BLOCK)} (optim_wrapper.type='
              f'{cfg.optim_wrapper.type}).', logger='current')
