"""Records per-iteration time and loss; writes MIT / MLT / MLI at the end.

Definitions: ``lmd_toolkit/evaluation/efficiency.py`` and
``docs/en/metrics.md`` (paper Table 1).
"""
import json
import math
import os.path as osp
from typing import Dict, Optional, Union

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook, IterTimerHook

from lmd_toolkit.evaluation.efficiency import DEFINITIONS, efficiency_metrics
from lmd_toolkit.registry import HOOKS
from lmd_toolkit.utils.fileio import atomic_write

DATA_BATCH = Optional[Union[dict, tuple, list]]
RECORD_KEYS = ('iter', 'time', 'data_time', 'loss', 'mask_ratio', 'wall')
CHECKPOINT_KEY = 'efficiency_records'


@HOOKS.register_module()
class TrainingEfficiencyHook(Hook):
    """Record every training iteration's time and loss; write MIT, MLT and
    MLI (paper Table 1, https://arxiv.org/abs/2312.07971) to a JSON file.

    After every training iteration the hook appends the global iteration
    (1-based), ``time`` and ``data_time`` of mmengine's ``IterTimerHook``,
    the loss, the ``train/mask_ratio`` that ``MaskRatioSchedulerHook`` logs
    (None without it) and ``wall``, the running sum of ``time``. Every
    ``interval`` iterations it puts the running MIT into the message hub as
    ``train/MIT`` (so the LoggerHook prints it). After training the main
    process writes ``<work_dir>/<out_file>`` with the definitions, this
    config, the metrics of ``efficiency_metrics`` and the records, and logs
    the metrics. The records are kept in checkpoints, so a resumed run
    covers all iterations.

    Args:
        window (int): Iterations per smoothed loss (trailing moving
            average). Defaults to 20.
        threshold (float, optional): Smoothed-loss level for
            ``time_to_threshold`` and ``iters_to_threshold``. Defaults to
            None.
        skip_first (int): Iterations left out of MIT (warm-up).
            Defaults to 0.
        out_file (str): JSON file name, relative to ``runner.work_dir``.
            Defaults to 'efficiency.json'.
        interval (int): Put the running MIT into the message hub every
            ``interval`` iterations. Defaults to 50.
    """

    # After IterTimerHook (NORMAL = 50), which writes this iteration's time;
    # before LoggerHook (BELOW_NORMAL = 60), which prints train/MIT; before
    # CheckpointHook (VERY_LOW = 90), so a checkpoint at iteration k holds
    # record k.
    priority = 55

    def __init__(self,
                 window: int = 20,
                 threshold: Optional[float] = None,
                 skip_first: int = 0,
                 out_file: str = 'efficiency.json',
                 interval: int = 50) -> None:
        if window < 1 or skip_first < 0 or interval < 1:
            raise ValueError(
                f'TrainingEfficiencyHook: window={window} and '
                f'interval={interval} must be >= 1, skip_first={skip_first} '
                '>= 0.')
        if threshold is not None and not math.isfinite(threshold):
            raise ValueError(f'TrainingEfficiencyHook: threshold={threshold} '
                             'must be finite.')
        self.window = window
        self.threshold = threshold
        self.skip_first = skip_first
        self.out_file = out_file
        self.interval = interval
        self.records: Dict[str, list] = {key: [] for key in RECORD_KEYS}
        self._loaded: Optional[Dict[str, list]] = None
        self._timed_sum = 0.0  # sum of records['time'][skip_first:]

    def before_train(self, runner) -> None:
        hooks = list(runner.hooks)
        timers = [i for i, h in enumerate(hooks)
                  if isinstance(h, IterTimerHook)]
        if not timers or timers[0] > hooks.index(self):
            raise RuntimeError(
                'TrainingEfficiencyHook reads the iteration time that '
                "IterTimerHook writes: keep default_hooks.timer="
                "dict(type='IterTimerHook') and give TrainingEfficiencyHook "
                'a lower priority (a higher number) than the timer.')
        if self._loaded is not None:
            # after_load_checkpoint also runs for `load_from` without resume
            # (runner.iter is then 0): keep only iterations already trained.
            keep = [i for i, it in enumerate(self._loaded['iter'])
                    if it <= runner.iter]
            self.records = {
                key: [self._loaded[key][i] for i in keep]
                for key in RECORD_KEYS
            }
            self._loaded = None
        if runner.iter != len(self.records['iter']):
            runner.logger.warning(
                f'TrainingEfficiencyHook: training starts at iteration '
                f'{runner.iter} but {len(self.records["iter"])} earlier '
                'iterations are recorded (checkpoint without records?); the '
                'metrics cover the recorded iterations only.')
        self._timed_sum = math.fsum(self.records['time'][self.skip_first:])

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        hub = runner.message_hub
        step_time = float(hub.get_scalar('train/time').current())
        wall = self.records['wall'][-1] if self.records['wall'] else 0.0
        record = dict(
            iter=runner.iter + 1,
            time=step_time,
            data_time=_current_scalar(hub, 'train/data_time'),
            loss=_to_float(outputs['loss']),
            mask_ratio=_current_scalar(hub, 'train/mask_ratio'),
            wall=wall + step_time)
        for key in RECORD_KEYS:
            self.records[key].append(record[key])
        timed = len(self.records['time']) - self.skip_first
        if timed > 0:
            self._timed_sum += step_time
            if (runner.iter + 1) % self.interval == 0:
                hub.update_scalar('train/MIT', self._timed_sum / timed)

    def after_train(self, runner) -> None:
        if not is_main_process():
            return
        try:
            metrics = efficiency_metrics(
                self.records['time'],
                self.records['loss'],
                window=self.window,
                threshold=self.threshold,
                skip_first=self.skip_first,
                data_times=None if None in self.records['data_time'] else
                self.records['data_time'])
        except ValueError as err:  # training must not fail at its end
            metrics = dict(error=str(err))
        path = osp.join(runner.work_dir, self.out_file)
        self._write(path, metrics)
        if 'error' in metrics:
            runner.logger.warning(
                f'TrainingEfficiencyHook: no metrics ({metrics["error"]}); '
                f'records written to {path}.')
        else:
            runner.logger.info(
                'TrainingEfficiencyHook: ' + ', '.join(
                    f'{key}={_format(value)}'
                    for key, value in metrics.items()) + f' -> {path}')

    def _write(self, path: str, metrics: dict) -> None:
        """Write the JSON file atomically (temporary file, then rename)."""
        content = dict(
            definition=DEFINITIONS,
            config=dict(
                window=self.window,
                threshold=self.threshold,
                skip_first=self.skip_first),
            metrics=metrics,
            records={key: [_finite_or_none(v) for v in values]
                     for key, values in self.records.items()})
        with atomic_write(path) as f:
            json.dump(content, f, indent=1, allow_nan=False)

    # ------------------------------------------------------------ resume
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # Plain lists of int / float / None: loadable with weights_only=True.
        checkpoint[CHECKPOINT_KEY] = {
            key: list(values)
            for key, values in self.records.items()
        }

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        if state:
            count = len(state['iter'])
            self._loaded = {
                key: list(state.get(key, [None] * count))
                for key in RECORD_KEYS
            }


def _current_scalar(hub, key: str) -> Optional[float]:
    """The latest value of a message-hub scalar, None if never logged."""
    if key not in hub.log_scalars:
        return None
    return float(hub.get_scalar(key).current())


def _to_float(value: Union[torch.Tensor, float]) -> float:
    """A Python float of a scalar (a loss tensor may still require grad)."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
    return float(value)


def _finite_or_none(value: Optional[float]) -> Optional[float]:
    """JSON has no NaN / inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _format(value: Union[int, float, None]) -> str:
    if isinstance(value, float):
        return f'{value:.4g}'
    return 'n/a' if value is None else str(value)

