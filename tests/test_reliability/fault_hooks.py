"""Fault-injecting hooks for the reliability tests, loaded as a plugin
(``custom_imports=dict(imports=['fault_hooks'])``) or used in process."""
import os
import signal
import time

import torch
from mmengine.hooks import Hook

from lmd_toolkit.registry import HOOKS


def _module(runner):
    model = runner.model
    return getattr(model, 'module', model)


@HOOKS.register_module()
class PoisonLossHook(Hook):
    """Multiply the loss of the given (1-based) iterations by NaN."""

    priority = 'VERY_HIGH'

    def __init__(self, iters=(3, )) -> None:
        self.iters = set(iters)

    def before_train(self, runner) -> None:
        head = _module(runner).head
        original = head.loss

        def loss(*args, **kwargs):
            value = original(*args, **kwargs)
            if runner.iter + 1 in self.iters:
                value = value * float('nan')
            return value

        head.loss = loss


@HOOKS.register_module()
class PoisonWeightsHook(Hook):
    """Write a NaN into the first weight after the given iteration's step
    (the gradients were finite: only the save check can catch it)."""

    priority = 'VERY_HIGH'

    def __init__(self, at_iter: int = 3) -> None:
        self.at_iter = at_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if runner.iter + 1 == self.at_iter:
            with torch.no_grad():
                next(_module(runner).backbone.parameters()).view(-1)[0] = \
                    float('nan')


@HOOKS.register_module()
class KillDuringSaveHook(Hook):
    """SIGKILL this process while it saves the checkpoint of ``at_iter``:
    after its bytes are written, before the file gets its name. Once: the
    kill is skipped when ``once_file`` exists (the resumed run)."""

    def __init__(self, at_iter: int, once_file: str) -> None:
        self.at_iter, self.once_file = at_iter, once_file

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        if runner.iter + 1 != self.at_iter or os.path.exists(self.once_file):
            return
        open(self.once_file, 'w').close()

        def killed(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        os.replace = killed


@HOOKS.register_module()
class SleepHook(Hook):
    """Sleep before the first iteration (a run that holds its work dir)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def before_train(self, runner) -> None:
        time.sleep(self.seconds)
