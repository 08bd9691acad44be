"""Exact, checked resumption: what the next iterations depend on goes into
every checkpoint, and a resumed run continues the unbroken one."""
import json
import logging
from typing import List, Optional

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook
from mmengine.hooks import Hook
from mmengine.logging import print_log

from lmd_toolkit.registry import HOOKS
from .checkpoint_hook import saves_after_train_iter
from lmd_toolkit.utils.config_text import (UnsafeConfigText, config_diff,
                                           parse_config_text, plain)
from lmd_toolkit.utils.rng import rng_state, set_rng_state
from lmd_toolkit.utils.state_dict import (check_state_dict,
                                          optimizer_param_names,
                                          relayout_optimizer_state)

# The config blocks a resumed run must share with the checkpoint's run.
RESUME_KEYS = ('model', 'train_dataloader', 'train_cfg', 'optim_wrapper',
               'param_scheduler', 'default_hooks.mask_ratio', 'custom_hooks',
               'randomness', 'auto_scale_lr')
# Keys under them that change speed or where files live, not the results.
IGNORED_SUFFIXES = ('num_workers', 'persistent_workers', 'pin_memory',
                    'val_interval', 'val_begin',
                    'prefetch_factor', 'cache_dir', 'dataset.batch_size')


def _pick(cfg: dict) -> dict:
    """The :data:`RESUME_KEYS` of a plain config, by dotted name."""
    picked = {}
    for key in RESUME_KEYS:
        value = cfg
        for part in key.split('.'):
            value = value.get(part) if isinstance(value, dict) else None
        picked[key] = value
    return picked


class ResumeConfigError(RuntimeError):
    """The resumed run's config differs from the checkpoint's."""


class _AlreadyAdvanced:
    """Stands in for the loop's dataloader iterator while mmengine's
    ``IterBasedTrainLoop`` "advances" it after a resume: ``ResumeHook`` has
    advanced the real one already (before restoring the random states), so
    the first ``skip`` calls return None and the real iterator is put back.
    """

    def __init__(self, loop, iterator, skip: int) -> None:
        self.loop, self.iterator, self.skip = loop, iterator, skip

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip <= 0:
            self.loop.dataloader_iterator = self.iterator
            return next(self.iterator)
        self.skip -= 1
        if self.skip == 0:
            self.loop.dataloader_iterator = self.iterator
        return None

    def __getattr__(self, name):
        return getattr(self.iterator, name)


def _sampler_state(runner) -> dict:
    loader = getattr(runner.train_loop, 'dataloader', None)
    sampler = getattr(loader, 'sampler', None)
    return dict(type=type(sampler).__name__,
                seed=getattr(sampler, 'seed', None),
                shuffle=getattr(sampler, 'shuffle', None))


def _optimizer_param_names(runner) -> Optional[List[List[str]]]:
    """Parameter names of every group of the (single) optimizer."""
    optimizer = getattr(getattr(runner, 'optim_wrapper', None), 'optimizer',
                        None)
    if not isinstance(optimizer, torch.optim.Optimizer):
        return None  # several optimizers (OptimWrapperDict), or none
    return optimizer_param_names(runner.model, optimizer)


def _fit_optimizer_state(runner, checkpoint: dict, state: dict) -> None:
    """Give the checkpoint's optimizer state this optimizer's grouping when
    the two list the parameters differently (an FSDP run's optimizer holds
    the trainable parameters only, mmengine's default constructor under DDP
    lists the frozen ones too); each parameter's state follows its name."""
    saved_names = state.get('optimizer_params')
    names = _optimizer_param_names(runner)
    saved = checkpoint.get('optimizer')
    if not saved_names or names is None or not isinstance(saved, dict) \
            or saved_names == names or 'param_groups' not in saved:
        return
    checkpoint['optimizer'] = relayout_optimizer_state(
        saved, saved_names, runner.optim_wrapper.optimizer, names)
    print_log('Resume: the checkpoint\'s optimizer groups the parameters '
              'differently (e.g. FSDP vs DDP); its state was matched to this '
              'optimizer by parameter name.', logger='current')


@HOOKS.register_module()
class ResumeHook(Hook):
    """Make ``--resume`` continue the unbroken run exactly, and refuse to
    resume what does not fit (docs/en/reliability.md).

    Saving: every checkpoint gets ``resume_state``: the global random states
    of Python, numpy, torch and CUDA of every rank (gathered when a
    checkpoint is due), the sampler's type and seed, the world size and the
    config as JSON (a structured copy, compared as data; mmengine's
    ``meta['cfg']`` text is never executed).

    Resuming (``after_load_checkpoint`` with ``resume=True``):

    - the blocks ``model``, ``train_dataloader``, ``train_cfg``,
      ``optim_wrapper``, ``param_scheduler``, ``default_hooks.mask_ratio``
      (the mask schedule), ``custom_hooks``, ``randomness``,
      ``auto_scale_lr`` and the world size must
      equal the checkpoint's, except loader speed settings and
      ``cache_dir``; otherwise :class:`ResumeConfigError` lists every
      differing key with both values, unless ``allow_config_changes``
      (``tools/train.py --resume-with-changes``), which logs them instead;
    - then the checkpoint's weights must fit the model exactly (names the
      missing, unexpected and mis-shaped keys).

    Continuing (``before_train``): mmengine's ``IterBasedTrainLoop`` replays
    the data of the finished iterations; this hook does that replay itself
    first and then restores the random states, so the next batch, its
    augmentations and its masks are drawn from exactly the states of the
    unbroken run (the loop's own replay is then skipped). Together with the
    optimizer, scheduler, message-hub and mask-ratio state that mmengine
    restores, a kill + ``--resume`` reproduces the unbroken run's losses and
    weights bit for bit on CPU in one process.

    Validation leaves the random states as it found them (``before_val`` /
    ``after_val``), so validating does not change the training run.

    Args:
        allow_config_changes (bool): Resume although the config differs
            (e.g. to change the schedule on purpose). Defaults to False.
    """

    # LOW: after_train_iter before the CheckpointHook's (VERY_LOW) save,
    # before_train after the hooks that could still draw random numbers.
    priority = 'LOW'

    def __init__(self, allow_config_changes: bool = False) -> None:
        self.allow_config_changes = allow_config_changes
        self._resumed: Optional[dict] = None
        self._gathered: Optional[tuple] = None
        self._before_val: Optional[dict] = None

    # -- saving -----------------------------------------------------------
    def _gather(self, runner) -> None:
        """All ranks: collect every rank's random state for a checkpoint
        rank 0 is about to write (mmengine saves on rank 0 only)."""
        if get_world_size() > 1 and any(
                saves_after_train_iter(hook, runner) for hook in runner.hooks
                if isinstance(hook, MMEngineCheckpointHook)):
            self._gathered = (runner.iter, all_gather_object(rng_state()))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        self._gather(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._gathered is not None and self._gathered[0] == runner.iter:
            states = self._gathered[1]
        else:
            states = [rng_state()] if get_world_size() == 1 else None
        checkpoint['resume_state'] = dict(
            version=1,
            world_size=get_world_size(),
            rng=states,
            sampler=_sampler_state(runner),
            config=json.dumps(plain(runner.cfg.to_dict()), default=str),
            optimizer_params=_optimizer_param_names(runner))

    # -- checking ---------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return
        path = getattr(runner, '_load_from', None) or 'the checkpoint'
        state = checkpoint.get('resume_state') or {}
        changes = self._config_changes(runner, checkpoint, state, path)
        if changes and not self.allow_config_changes:
            raise ResumeConfigError(
                f'Resuming {path} with a config that differs from the one it '
                f'was trained with, in {len(changes)} key(s):\n  ' +
                '\n  '.join(changes) + '\nResume with the recorded config '
                '(a copy is in the work dir), or pass --resume-with-changes '
                '(tools/train.py; default_hooks.resume.allow_config_changes='
                'True) to change them on purpose.')
        if changes:
            print_log(
                f'Resuming {path} with these config changes (allowed):\n  ' +
                '\n  '.join(changes), logger='current',
                level=logging.WARNING)
        check_state_dict(
            runner.model, checkpoint.get('state_dict', {}), path,
            role='Training checkpoint (resume)',
            fix='Resume with the config the checkpoint was trained with '
            '(a copy is in its work dir); the model cannot change in a '
            'resume.')
        _fit_optimizer_state(runner, checkpoint, state)
        self._resumed = state

    def _config_changes(self, runner, checkpoint: dict, state: dict,
                        path: str) -> List[str]:
        if state.get('config'):
            recorded = json.loads(state['config'])
        else:
            text = (checkpoint.get('meta') or {}).get('cfg')
            if not text:
                return []
            try:
                recorded = parse_config_text(text, f"{path} meta['cfg']")
            except UnsafeConfigText as e:
                raise ResumeConfigError(
                    f'{e} The recorded config of {path} cannot be compared '
                    'without running it; resume from a checkpoint written '
                    'by lmd-toolkit.') from e
        current = plain(runner.cfg.to_dict())
        changes = [
            c for c in config_diff(_pick(recorded), _pick(current))
            if not c.split(':')[0].endswith(IGNORED_SUFFIXES)
        ]
        saved_world = state.get('world_size')
        if saved_world is not None and saved_world != get_world_size():
            changes.append(f'world_size: {saved_world} -> {get_world_size()}'
                           ' (the effective batch and the data order change)')
        return changes

    # -- validation draws nothing from training's random states -----------
    def before_val(self, runner) -> None:
        self._before_val = rng_state()

    def after_val(self, runner) -> None:
        # Validation runs after the checkpoint of its iteration is saved;
        # its loader and any random op would otherwise move the states the
        # next iteration draws from, and the resumed run (which does not
        # validate first) would differ. A run with validation now trains
        # exactly as one without.
        state, self._before_val = self._before_val, None
        if state is not None:
            set_rng_state(state)

    # -- continuing -------------------------------------------------------
    def before_train(self, runner) -> None:
        state, self._resumed = self._resumed, None
        if state is None:
            return
        loop = runner.train_loop
        skip = getattr(loop, '_iter', 0)
        if skip > 0 and hasattr(loop, 'dataloader_iterator'):
            print_log(f'Resume: replaying the data order of {skip} '
                      'iterations, then restoring the random states.',
                      logger='current')
            iterator = loop.dataloader_iterator
            for _ in range(skip):
                next(iterator)
            loop.dataloader_iterator = _AlreadyAdvanced(loop, iterator, skip)
        states = state.get('rng')
        if states and len(states) == get_world_size():
            set_rng_state(states[get_rank()])
        else:  # an older checkpoint, or another world size (forced)
            print_log('Resume: the checkpoint holds no random states for '
                      f'{get_world_size()} rank(s); the random draws of the '
                      'resumed run differ from an unbroken one.',
                      logger='current', level=logging.WARNING)
