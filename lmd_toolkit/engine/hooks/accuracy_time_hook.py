"""MAT@k: mean accuracy-increase time of a fine-tuning run (paper Table 2).

Definition (``docs/en/metrics.md``): over the validations ``i = 1..n`` of a
run, with ``t_i`` the cumulative training wall-clock seconds (validation
excluded) and ``a_i`` the top-k accuracy in percent at validation ``i``::

    MAT@k = (t_n - t_1) / (a_n - a_1)    seconds per accuracy point

undefined (None) with fewer than two validations or when ``a_n <= a_1``.
"""
import json
import math
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from lmd_toolkit.registry import HOOKS
from lmd_toolkit.utils.fileio import atomic_write

DEFINITION = ('MAT@k = (t_last - t_first) / (acc_last - acc_first): training '
              'seconds (validation excluded) per top-k percentage point '
              'gained between the first and the last validation; None with '
              'fewer than 2 validations or no net gain.')


def mean_accuracy_increase_time(times: Sequence[float],
                                accuracies: Sequence[float]
                                ) -> Optional[float]:
    """MAT of a ``(time, accuracy)`` series, see the module docstring.

    Args:
        times (Sequence[float]): Cumulative training seconds at each
            validation, in order.
        accuracies (Sequence[float]): Accuracy (percent) at each validation.

    Returns:
        float | None: Seconds per accuracy point, None when undefined.
    """
    if len(times) != len(accuracies):
        raise ValueError('times and accuracies differ in length.')
    if len(times) < 2:
        return None
    gain = accuracies[-1] - accuracies[0]
    if not gain > 0:
        return None
    return (times[-1] - times[0]) / gain


@HOOKS.register_module()
class AccuracyIncreaseTimeHook(Hook):
    """Record (training time, top-k accuracy) at every validation; report
    MAT@k.

    Training time is wall-clock seconds since ``before_train`` minus the
    time spent in validation loops (checkpoint saving and logging between
    iterations count as training). At every validation the hook logs
    ``val/train_seconds`` and ``val/MAT@k`` (NaN while undefined) and rewrites
    ``<work_dir>/<out_name>.json`` (definition, series, MAT@k) and
    ``<work_dir>/<out_name>.png`` (accuracy vs training time), on the main
    process. The series and time survive ``resume`` (kept in checkpoints).

    Args:
        topk (Sequence[int]): The k of MAT@k. Defaults to (1, 5).
        metric_prefix (str): Accuracy keys are ``f'{metric_prefix}{k}'``, as
            mmpretrain's ``Accuracy`` names them. Defaults to
            'accuracy/top'.
        out_name (str): Base name of the JSON and PNG files.
            Defaults to 'accuracy_time'.
        plot (bool): Write the PNG. Defaults to True.
    """

    priority = 'NORMAL'  # before LoggerHook, so that MAT is in the val log

    def __init__(self,
                 topk: Sequence[int] = (1, 5),
                 metric_prefix: str = 'accuracy/top',
                 out_name: str = 'accuracy_time',
                 plot: bool = True) -> None:
        self.topk = tuple(int(k) for k in topk)
        self.metric_prefix = metric_prefix
        self.out_name = out_name
        self.plot = plot
        self.series: List[Dict[str, float]] = []
        self.train_time = 0.0
        self._segment_start: Optional[float] = None
        self._during_training = False

    # ------------------------------------------------------------ timing
    def _elapsed(self) -> float:
        running = 0.0 if self._segment_start is None else \
            time.perf_counter() - self._segment_start
        return self.train_time + running

    def before_train(self, runner) -> None:
        self._segment_start = time.perf_counter()

    def after_train(self, runner) -> None:
        self.train_time = self._elapsed()
        self._segment_start = None

    def before_val_epoch(self, runner) -> None:
        # Only validations inside runner.train() are recorded.
        self._during_training = self._segment_start is not None
        if self._during_training:
            self.train_time = self._elapsed()
            self._segment_start = None

    def after_val_epoch(self,
                        runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        if not self._during_training:
            return  # runner.val() / test(): no training time to report
        metrics = metrics or {}
        point = dict(
            iter=int(runner.iter),
            epoch=int(runner.epoch),
            train_seconds=float(self.train_time))
        for k in self.topk:
            key = f'{self.metric_prefix}{k}'
            if key not in metrics:
                raise KeyError(
                    f'AccuracyIncreaseTimeHook: the validation metrics have '
                    f'no {key!r} (got {sorted(metrics)}); set '
                    f"val_evaluator=dict(type='mmpretrain.Accuracy', "
                    f'topk={self.topk}) or metric_prefix.')
            point[f'top{k}'] = float(metrics[key])
        self.series.append(point)
        mats = self.mat()
        hub = runner.message_hub
        hub.update_scalar('val/train_seconds', point['train_seconds'])
        for k, value in mats.items():  # NaN while undefined, never stale
            hub.update_scalar(f'val/MAT@{k}',
                              float('nan') if value is None else value)
        runner.logger.info('AccuracyIncreaseTimeHook: ' + ', '.join(
            f'MAT@{k}={_fmt(v)} s/point' for k, v in mats.items()) +
                           f' after {point["train_seconds"]:.1f} s training.')
        if is_main_process():
            self._write(runner.work_dir)
        self._segment_start = time.perf_counter()

    def mat(self) -> Dict[int, Optional[float]]:
        """MAT@k of the series so far, for every k of ``topk``."""
        times = [p['train_seconds'] for p in self.series]
        return {
            k: mean_accuracy_increase_time(
                times, [p[f'top{k}'] for p in self.series])
            for k in self.topk
        }

    # ------------------------------------------------------------ output
    def _write(self, work_dir: str) -> None:
        record = dict(
            definition=DEFINITION,
            unit='seconds per accuracy point (percent)',
            series=self.series,
            **{f'MAT@{k}': v for k, v in self.mat().items()})
        with atomic_write(osp.join(work_dir, f'{self.out_name}.json')) as f:
            json.dump(record, f, indent=2)
        if self.plot:
            self._plot(osp.join(work_dir, f'{self.out_name}.png'))

    def _plot(self, path: str) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        fig = Figure(figsize=(5, 3.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        times = [p['train_seconds'] for p in self.series]
        for k, mat in self.mat().items():
            ax.plot(times, [p[f'top{k}'] for p in self.series], marker='o',
                    label=f'top-{k} (MAT@{k} = {_fmt(mat)} s/pt)')
        ax.set_xlabel('training time (s, validation excluded)')
        ax.set_ylabel('accuracy (%)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        with atomic_write(path, 'wb') as f:
            fig.savefig(f, format='png', dpi=100)

    # ------------------------------------------------------------ resume
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['accuracy_time'] = dict(
            train_seconds=self._elapsed(), series=list(self.series))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('accuracy_time')
        if state:
            self.train_time = float(state['train_seconds'])
            self.series = [dict(p) for p in state['series']]


def _fmt(value: Optional[float]) -> str:
    return 'n/a' if value is None or not math.isfinite(value) \
        else f'{value:.4g}'
