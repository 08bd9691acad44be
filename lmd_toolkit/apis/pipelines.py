"""Multi-run jobs in one process: stage 1 then stage 2 (``tools/demo.py``),
and several configs on one budget (``tools/reproduce.py``).

Every run is a plain mmengine ``Runner`` built from a config file, exactly as
``tools/train.py`` builds it; these helpers only pick work dirs, give a run
its budget (the block ``configs/_base_/schedules/iter_budget.py``) and find
the checkpoint a run wrote.
"""
import logging
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config
from mmengine.logging import print_log

from lmd_toolkit.utils.config_text import parse_config_text, plain
from lmd_toolkit.utils.fileio import safe_torch_load
from lmd_toolkit.utils.launch import BLOCKS_DIR, load_block, load_config
from lmd_toolkit.utils.workdir import work_dir_lock

#: The config keys that decide what a training run learns.
RECIPE_KEYS = ('model', 'train_dataloader', 'optim_wrapper', 'param_scheduler',
               'train_cfg')


#: The budget block: one number, ``max_iters``, and what follows from it.
BUDGET_BLOCK = osp.join(BLOCKS_DIR, 'schedules', 'iter_budget.py')


def set_budget(cfg: Config, max_iters: int) -> Config:
    """Give an iteration-based config the budget ``max_iters``: merge
    ``configs/_base_/schedules/iter_budget.py`` read with that number.

    The block sets ``train_cfg.max_iters`` and ``val_interval``, the
    learning-rate schedule (a linear warm-up over the first 5 % of the
    iterations, at least 1, and a cosine decay to 1e-5), and the checkpoint,
    reconstruction-grid and logger intervals; its hooks are merged only into
    hooks the config has, and a shorter logger interval is kept.
    Mask-ratio schedules need nothing: they are functions of
    (iteration, max_iters).

    Args:
        cfg (Config): A config with an ``IterBasedTrainLoop``.
        max_iters (int): The budget, ``>= 2``.

    Returns:
        Config: ``cfg``, changed in place.
    """
    loop = cfg.train_cfg.get('type', 'IterBasedTrainLoop')
    if loop != 'IterBasedTrainLoop':
        raise ValueError(f'set_budget: train_cfg.type is {loop!r}; only '
                         'IterBasedTrainLoop configs can be given a budget in '
                         'iterations.')
    if max_iters < 2:
        raise ValueError(f'set_budget: max_iters must be >= 2, got '
                         f'{max_iters}.')
    block = load_block(BUDGET_BLOCK, max_iters=max_iters).to_dict()
    hooks = cfg.default_hooks
    block_hooks = {
        name: hook for name, hook in block.pop('default_hooks').items()
        if hooks.get(name)
    }
    if 'logger' in block_hooks:
        block_hooks['logger']['interval'] = min(
            hooks.logger.get('interval', 50),
            block_hooks['logger']['interval'])
    cfg.merge_from_dict(dict(train_cfg=block['train_cfg'],
                             param_scheduler=block['param_scheduler'],
                             default_hooks=block_hooks))
    return cfg


def train_in_process(cfg: Config) -> str:
    """Train ``cfg`` with mmengine's Runner in this process.

    Args:
        cfg (Config): A loaded config with ``work_dir`` set (see
            ``lmd_toolkit.utils.launch.load_config``).

    Returns:
        str: Path of the last checkpoint the run saved.
    """
    from mmengine.runner import Runner
    with work_dir_lock(cfg.work_dir):  # one run per work dir
        runner = Runner.from_cfg(cfg)
        runner.train()
    return last_checkpoint(runner.work_dir)


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint named in mmengine's ``<work_dir>/last_checkpoint``."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise FileNotFoundError(
            f'{marker} not found: the run in {work_dir} saved no checkpoint '
            '(is default_hooks.checkpoint set?).')
    with open(marker) as f:
        path = f.read().strip()
    if not osp.isfile(path):
        raise FileNotFoundError(f'{marker} names {path}, which does not '
                                'exist.')
    return path


def ensure_stage1(config: str,
                  work_dir: str,
                  max_iters: Optional[int] = None,
                  retrain: bool = False) -> str:
    """Train a projector (stage 1) unless its checkpoint exists already.

    The checkpoint is ``<work_dir>/iter_<max_iters>.pth`` (``max_iters``
    defaults to the config's). It is reused as it is when present and
    ``retrain`` is False, so a second demo run skips stage 1, unless the
    config it recorded differs from ``config`` in a key of ``RECIPE_KEYS``
    (e.g. after an update of the demo's recipe): then it is renamed to
    ``<name>.stale`` (``.stale1``, ... when that exists; nothing is deleted)
    and stage 1 trains again.

    Args:
        config (str): A stage-1 config (``configs/projectors/*.py``).
        work_dir (str): Its work dir.
        max_iters (int, optional): Budget; None keeps the config's.
        retrain (bool): Train even if the checkpoint exists (the old one is
            replaced only when the new run saves). Defaults to False.

    Returns:
        str: Path of the stage-1 checkpoint.
    """
    cfg = load_config(config, work_dir=work_dir)
    if max_iters is not None:
        set_budget(cfg, max_iters)
    ckpt = osp.join(work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    if osp.isfile(ckpt) and not retrain:
        changed = recipe_changes(ckpt, cfg)
        if not changed:
            print_log(f'Stage 1: reusing {ckpt} (pass --retrain-stage1 to '
                      'train it again).', logger='current')
            return ckpt
        stale, n = f'{ckpt}.stale', 1
        while osp.exists(stale):  # keep every earlier stale checkpoint too
            stale, n = f'{ckpt}.stale{n}', n + 1
        os.replace(ckpt, stale)
        print_log(f'Stage 1: {ckpt} was trained with another '
                  f'{", ".join(changed)} than {config}; kept it as '
                  f'{stale} and training again.', logger='current',
                  level=logging.WARNING)
    print_log(f'Stage 1: training {config} for {cfg.train_cfg.max_iters} '
              f'iterations in {work_dir}.', logger='current')
    return train_in_process(cfg)


def recipe_changes(ckpt: str, cfg: Config) -> List[str]:
    """The ``RECIPE_KEYS`` whose value in the config that ``ckpt`` recorded
    (mmengine's ``meta['cfg']``) differs from ``cfg``'s.

    Args:
        ckpt (str): An mmengine training checkpoint.
        cfg (Config): The config it should have been trained with.

    Returns:
        list[str]: The differing keys, in ``RECIPE_KEYS`` order; empty when
        they all agree or when the checkpoint recorded no config (a bare
        state dict: nothing to compare with).
    """
    checkpoint = safe_torch_load(
        ckpt, role='Stage-1 checkpoint',
        fix='Delete it (or pass --retrain-stage1) to train stage 1 again.',
        mmap=True)
    text = (checkpoint.get('meta') or {}).get('cfg')
    if not text:
        return []
    # Parsed as data (literals only): a checkpoint's text is never run.
    recorded = parse_config_text(text, f"{ckpt} meta['cfg']")
    current = plain(cfg.to_dict())
    return [
        key for key in RECIPE_KEYS
        if plain(recorded.get(key)) != current.get(key)
    ]
