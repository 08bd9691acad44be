"""Config handling shared by ``tools/train.py`` and ``tools/test.py``."""
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, DictAction  # noqa: F401 (re-export)
from mmengine.logging import print_log
from mmengine.utils import import_modules_from_strings

from .compat import (fill_model_wrapper_cfg, init_cpu_distributed,
                     init_single_process_group)
from .setup_env import register_all_modules


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


def enable_amp(cfg: Config) -> None:
    """``--amp``: bf16 autocast, no loss scaling, the projector in fp32.

    ``AutocastOptimWrapper`` (dtype bfloat16) on CPU and on GPUs with bf16
    (CUDA compute capability >= 8.0); on older GPUs mmengine's
    ``AmpOptimWrapper`` with fp16 and dynamic loss scaling. A config that
    already names a mixed-precision wrapper is kept. Logged.

    Args:
        cfg (Config): The config; ``cfg.optim_wrapper`` is edited in place.
    """
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in ('AmpOptimWrapper', 'AutocastOptimWrapper'):
        print_log(f'--amp: the config already uses {wrapper}.',
                  logger='current')
        return
    if wrapper != 'OptimWrapper':
        raise ValueError(f'--amp replaces optim_wrapper.type=OptimWrapper, '
                         f'but the config sets {wrapper!r}; set the mixed-'
                         'precision wrapper in the config instead.')
    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported(
            including_emulation=False):
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('dtype', 'float16')
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    else:
        cfg.optim_wrapper.type = 'AutocastOptimWrapper'
        cfg.optim_wrapper.setdefault('dtype', 'bfloat16')
    print_log(
        f'--amp: optim_wrapper.type set to {cfg.optim_wrapper.type} '
        f'(dtype {cfg.optim_wrapper.dtype}).',
        logger='current')
