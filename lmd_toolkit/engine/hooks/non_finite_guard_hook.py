"""Stop training at the first non-finite loss or gradient, before a NaN
weight can reach a checkpoint."""
import logging
import math
from typing import Dict, List, Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper, OptimWrapperDict

from lmd_toolkit.registry import HOOKS
from ..strategies import is_fsdp


class NonFiniteTrainingError(RuntimeError):
    """Training produced a non-finite loss, gradient or weight."""


def _non_finite_tensors(named: Dict[str, torch.Tensor]) -> List[str]:
    """Names of the floating tensors holding a NaN or an Inf."""
    return [
        name for name, t in named.items()
        if torch.is_tensor(t) and t.is_floating_point()
        and not bool(torch.isfinite(t).all())
    ]


def _grads_finite(params: List[torch.nn.Parameter]) -> bool:
    """One synchronisation: the total norm is finite iff every gradient is."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Refuse non-finite training: a NaN / Inf loss or gradient stops
    training with an error naming the iteration and the loss terms, and no
    checkpoint with non-finite weights is ever written
    (docs/en/reliability.md).

    Before every optimizer step the gradients are checked (one total-norm
    reduction); a non-finite one skips the step, so the weights in memory
    stay those of the last good iteration. After the iteration, a bad step
    (non-finite loss term or gradient) raises
    :class:`NonFiniteTrainingError` once ``max_bad_steps`` of them come in a
    row; below that it is logged and skipped (opt-in: the default 1 stops at
    the first). The error is raised before the ``CheckpointHook`` runs, so
    the checkpoints on disk are the good ones (and the toolkit's
    ``CheckpointHook`` deletes old checkpoints only after a complete save).
    ``before_save_checkpoint`` refuses a state dict with non-finite weights
    in any case (e.g. a model that was already broken when resumed).

    With fp16 loss scaling (``AmpOptimWrapper``) overflowing gradients are
    the loss scaler's business: it skips those steps itself, so only the
    loss is checked.

    Args:
        max_bad_steps (int): Consecutive bad steps that stop training; steps
            before that are skipped with a warning. Defaults to 1.
        check_grads (bool): Check gradients before each optimizer step (and
            skip a bad step). Defaults to True.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, max_bad_steps: int = 1, check_grads: bool = True
                 ) -> None:
        if not isinstance(max_bad_steps, int) or max_bad_steps < 1:
            raise ValueError(f'NonFiniteGuardHook: max_bad_steps must be an '
                             f'int >= 1, got {max_bad_steps!r}.')
        self.max_bad_steps = max_bad_steps
        self.check_grads = check_grads
        self.consecutive = 0
        self.skipped_total = 0
        self._bad_grads: List[str] = []

    # -- gradient check inside the optimizer step ----------------------------
    def before_train(self, runner) -> None:
        if not self.check_grads:
            return
        wrappers = runner.optim_wrapper
        if isinstance(wrappers, OptimWrapperDict):
            wrappers = list(wrappers.values())
        elif isinstance(wrappers, OptimWrapper):
            wrappers = [wrappers]
        else:
            return
        # Sharded gradients (FSDP): each rank sees its shard only, so the
        # ranks agree on the step through one all-reduce.
        sharded = is_fsdp(runner.model) and get_world_size() > 1
        for wrapper in wrappers:
            if isinstance(wrapper, AmpOptimWrapper):
                continue  # the loss scaler skips overflowing steps itself
            self._guard_step(wrapper, sharded)

    def _guard_step(self, wrapper: OptimWrapper, sharded: bool = False
                    ) -> None:
        if getattr(wrapper.step, '_lmd_guarded', False):
            return
        step = wrapper.step
        params = [p for group in wrapper.optimizer.param_groups
                  for p in group['params']]

        def guarded_step(**kwargs) -> None:
            finite = _grads_finite(params)
            if sharded:
                flag = torch.tensor([float(not finite)])
                all_reduce(flag, op='max')
                finite = not bool(flag.item())
            if finite:
                step(**kwargs)
                return
            self._bad_grads.append(type(wrapper.optimizer).__name__)

        guarded_step._lmd_guarded = True
        wrapper.step = guarded_step

    # -- the decision, after the iteration ------------------------------------
    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        scalars = {
            k: float(v.detach()) if torch.is_tensor(v) else float(v)
            for k, v in (outputs or {}).items()
            if isinstance(v, (float, int)) or (
                torch.is_tensor(v) and v.numel() == 1)
        }
        bad_terms = {k: v for k, v in scalars.items() if not math.isfinite(v)}
        bad_grads, self._bad_grads = self._bad_grads, []
        bad = bool(bad_terms or bad_grads)
        if get_world_size() > 1:  # every rank takes the same decision
            flag = torch.tensor([float(bad)])
            all_reduce(flag, op='max')
            bad = bool(flag.item())
        if not bad:
            self.consecutive = 0
            return
        self.consecutive += 1
        self.skipped_total += 1
        it = runner.iter + 1
        terms = ', '.join(f'{k}={v:.6g}' for k, v in sorted(
            scalars.items())) or '(none logged)'
        what = []
        if bad_terms:
            what.append('non-finite loss term(s) ' + ', '.join(bad_terms))
        if bad_grads:
            names = _non_finite_tensors({
                n: p.grad
                for n, p in runner.model.named_parameters()
                if p.grad is not None
            })
            what.append('non-finite gradients' + (
                f' (e.g. {", ".join(names[:3])})' if names else ''))
        if not what:
            what.append('a non-finite value on another rank')
        message = (f'Iteration {it} of {runner.max_iters}: '
                   f'{"; ".join(what)} (loss terms: {terms}).')
        if self.consecutive < self.max_bad_steps:
            print_log(
                f'{message} Skipped this step ({self.consecutive} in a row, '
                f'stopping at {self.max_bad_steps}).',
                logger="current", level=logging.WARNING)
            return
        last = runner.message_hub.get_info('last_ckpt')
        raise NonFiniteTrainingError(
            f'{message} Training stopped after {self.consecutive} '
            'consecutive bad step(s) (NonFiniteGuardHook.max_bad_steps='
            f'{self.max_bad_steps}); the weights of this step were not '
            'applied and no checkpoint was written for it. Last good '
            f'checkpoint: {last or "none saved yet"}. Fix: lower '
            'optim_wrapper.optimizer.lr, clip gradients '
            '(optim_wrapper.clip_grad=dict(max_norm=1.0)), check the data or '
            'latent cache for NaN, or resume from the last good checkpoint.')

    # -- never write non-finite weights ----------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = _non_finite_tensors(checkpoint.get('state_dict', {}))
        if bad:
            meta = checkpoint.get('meta') or {}
            raise NonFiniteTrainingError(
                'Refusing to save a checkpoint at iteration '
                f'{meta.get("iter", runner.iter + 1)}: '
                f'{len(bad)} weight tensor(s) hold NaN/Inf (e.g. '
                f'{", ".join(bad[:3])}). No checkpoint file was written or '
                'deleted. Fix: resume from the last good checkpoint with a '
                'lower learning rate or gradient clipping.')
