"""MIT / MLT / MLI: the pure functions by hand, the hook in a real Runner."""
import json
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from lmd_toolkit.engine.hooks import TrainingEfficiencyHook
from lmd_toolkit.evaluation import efficiency_metrics, smooth_losses
from lmd_toolkit.utils import register_all_modules

register_all_modules()

TIMES = [1, 2, 1, 2, 1, 2]
LOSSES = [4, 3, 2, 1.5, 1, 0.5]


def test_smooth_losses_by_hand():
    # (4+3)/2, (3+2)/2, (2+1.5)/2, (1.5+1)/2, (1+0.5)/2
    assert smooth_losses(LOSSES, 2) == [3.5, 2.5, 1.75, 1.25, 0.75]
    assert smooth_losses(LOSSES, 1) == LOSSES
    assert smooth_losses(LOSSES, 6) == [12 / 6]


def test_efficiency_metrics_by_hand():
    m = efficiency_metrics(
        TIMES, LOSSES, window=2, threshold=1.3,
        data_times=[0.5, 0, 0, 0, 0, 0.5])
    # s_1 = 3.5 (first full window, iterations 0..1), s_5 = 0.75:
    # decrease = 3.5 - 0.75 = 2.75.
    assert m['loss_start'] == 3.5
    assert m['loss_end'] == m['final_loss'] == 0.75
    assert m['num_iters'] == 6 and m['window'] == 2
    assert m['total_time'] == 9  # 1+2+1+2+1+2
    assert m['MIT'] == 1.5  # 9 / 6
    # Iterations 2..5 lie between the two smoothed points: 1+2+1+2 = 6 s.
    assert m['MLT'] == pytest.approx(6 / 2.75)  # 2.1818 s per loss unit
    assert m['MLI'] == pytest.approx(4 / 2.75)  # (6 - 2) iterations
    # s_k <= 1.3 first at k = 4 (s_4 = 1.25): 1+2+1+2+1 = 7 s, 5 iterations.
    assert m['threshold'] == 1.3
    assert m['time_to_threshold'] == 7
    assert m['iters_to_threshold'] == 5
    assert m['mean_data_time'] == pytest.approx(1 / 6)


def test_skip_first_threshold_and_no_decrease():
    m = efficiency_metrics(TIMES, LOSSES, window=2, skip_first=1)
    assert m['MIT'] == pytest.approx(8 / 5)  # 2+1+2+1+2 over 5
    assert m['MLT'] == pytest.approx(6 / 2.75)  # skip_first is MIT only
    assert 'time_to_threshold' not in m and 'mean_data_time' not in m
    never = efficiency_metrics(TIMES, LOSSES, window=2, threshold=0.5)
    assert never['time_to_threshold'] is None
    assert never['iters_to_threshold'] is None
    # The first full window already meets the threshold: k = window - 1.
    early = efficiency_metrics(TIMES, LOSSES, window=2, threshold=10)
    assert early['time_to_threshold'] == 3 and early['iters_to_threshold'] == 2
    flat = efficiency_metrics([1] * 4, [1, 2, 2, 1], window=2)
    assert flat['MLT'] is None and flat['MLI'] is None  # 1.5 -> 1.5


@pytest.mark.parametrize('kwargs,match', [
    (dict(times=[1, 2], losses=[1]), 'times and losses differ in length: '
     '2 vs 1'),
    (dict(losses=[4, 3, float('nan'), 1, 1, 1]), r'losses\[2\] is nan'),
    (dict(times=[1, 2, 1, float('inf'), 1, 2]), r'times\[3\] is inf'),
    (dict(times=[1, 2, -1, 2, 1, 2]), r'times\[2\] is -1.0'),
    (dict(window=6), 'needs at least window \\+ 1 = 7 iterations .* got 6'),
    (dict(window=0), 'window=0 must be a positive integer'),
    (dict(skip_first=6), r'skip_first=6 must be an integer in \[0, 5\]'),
    (dict(data_times=[0.1]), 'data_times and times differ in length'),
])
def test_errors_name_the_problem(kwargs, match):
    args = dict(dict(times=TIMES, losses=LOSSES, window=2), **kwargs)
    with pytest.raises(ValueError, match=match):
        efficiency_metrics(**args)


def test_smooth_losses_window_error():
    with pytest.raises(ValueError, match=r'window=7 .* len\(losses\)=6'):
        smooth_losses(LOSSES, 7)


# ---------------------------------------------------------------- Runner
class LinearRegression(BaseModel):
    """y = w x fitted by SGD: the loss falls; has a mask_ratio to set."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.mask_ratio = 0.0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        pred = self.linear(inputs)
        return dict(loss=(pred - data_samples).pow(2).mean())


class TimeRecorder(Hook):
    """Reads the iteration time independently of TrainingEfficiencyHook,
    after every other hook."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.times = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        hub = runner.message_hub
        self.times.append(hub.get_scalar('train/time').current())


def dataset():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return [dict(inputs=x[i], data_samples=y[i]) for i in range(16)]


def make_runner(work_dir, name, custom_hooks, max_iters=8, timer=True,
                **kwargs):
    return Runner(
        model=LinearRegression(),
        work_dir=str(work_dir),
        experiment_name=name,  # a message hub of its own
        train_dataloader=dict(
            dataset=dataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        custom_hooks=custom_hooks,
        default_hooks=dict(
            timer=dict(type='IterTimerHook') if timer else None,
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=4,
                            by_epoch=False)),
        default_scope='lmd_toolkit',
        **kwargs)


def read_json(work_dir):
    with open(osp.join(str(work_dir), 'efficiency.json')) as f:
        return json.load(f)


def test_runner_writes_metrics(tmp_path):
    recorder = TimeRecorder()
    runner = make_runner(tmp_path, f'run_{tmp_path.name}', [
        dict(type='MaskRatioSchedulerHook',
             scheduler=dict(type='UniformMaskRatio')),
        dict(type='TrainingEfficiencyHook', window=2, interval=4),
        recorder,
    ])
    names = [type(h).__name__ for h in runner.hooks]
    assert names.index('IterTimerHook') < names.index(
        'TrainingEfficiencyHook') < names.index('LoggerHook')
    runner.train()

    out = read_json(tmp_path)
    records, metrics = out['records'], out['metrics']
    assert out['config'] == dict(window=2, threshold=None, skip_first=0)
    assert set(out['definition']) >= {'MIT', 'MLT', 'MLI'}
    assert records['iter'] == list(range(1, 9))
    assert all(len(v) == 8 for v in records.values())
    # Independent source: mmengine's per-iteration time, read by a hook that
    # runs after all others.
    assert records['time'] == recorder.times
    assert metrics['MIT'] == pytest.approx(sum(recorder.times) / 8)
    # mmengine's own log: with LoggerHook(interval=1) the time written at
    # iteration 8 is the mean over the LogProcessor window (10 >= 8), i.e.
    # over all 8 iterations.
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        logged = [json.loads(line) for line in f]
    assert logged[-1]['iter'] == 8
    assert metrics['MIT'] == pytest.approx(logged[-1]['time'], rel=1e-6)
    # train/MIT in the log at iterations 4 and 8: the running mean.
    assert logged[3]['MIT'] == pytest.approx(sum(recorder.times[:4]) / 4)
    assert logged[7]['MIT'] == pytest.approx(metrics['MIT'])
    assert records['wall'][-1] == pytest.approx(metrics['total_time'])
    assert records['mask_ratio'] == pytest.approx(
        [0.15 + 0.6 * t / 7 for t in range(8)])
    assert all(d >= 0 for d in records['data_time'])
    assert metrics['loss_end'] < metrics['loss_start']
    assert metrics['MLI'] == pytest.approx(
        6 / (metrics['loss_start'] - metrics['loss_end']))


def test_too_few_iterations_write_an_error(tmp_path):
    runner = make_runner(tmp_path, f'few_{tmp_path.name}',
                         [dict(type='TrainingEfficiencyHook', window=5)],
                         max_iters=3)
    runner.train()  # does not raise
    out = read_json(tmp_path)
    assert 'needs at least window + 1 = 6 iterations' in out['metrics'][
        'error']
    assert out['records']['iter'] == [1, 2, 3]
    assert out['records']['mask_ratio'] == [None] * 3


def test_resume_covers_all_iterations(tmp_path):
    first = make_runner(tmp_path, f'first_{tmp_path.name}',
                        [dict(type='TrainingEfficiencyHook', window=2)],
                        max_iters=4)
    first.train()
    part = read_json(tmp_path)['records']
    checkpoint_path = osp.join(str(tmp_path), 'iter_4.pth')
    # The records are plain lists: loadable without unpickling objects.
    stored = torch.load(checkpoint_path, weights_only=False)[
        'efficiency_records']
    torch.save(stored, tmp_path / 'records.pth')
    assert torch.load(tmp_path / 'records.pth', weights_only=True) == stored

    resumed = make_runner(tmp_path, f'resumed_{tmp_path.name}',
                          [dict(type='TrainingEfficiencyHook', window=2)],
                          max_iters=8, resume=True,
                          load_from=checkpoint_path)
    resumed.train()
    records = read_json(tmp_path)['records']
    assert records['iter'] == list(range(1, 9))
    for key in ('time', 'loss', 'wall'):
        assert records[key][:4] == part[key]
    assert records['wall'][-1] == pytest.approx(sum(records['time']))


def test_load_from_without_resume_starts_empty(tmp_path):
    first = make_runner(tmp_path / 'a', f'pre_{tmp_path.name}',
                        [dict(type='TrainingEfficiencyHook', window=2)],
                        max_iters=4)
    first.train()
    tuned = make_runner(tmp_path / 'b', f'tune_{tmp_path.name}',
                        [dict(type='TrainingEfficiencyHook', window=2)],
                        max_iters=3,
                        load_from=str(tmp_path / 'a' / 'iter_4.pth'))
    tuned.train()
    assert read_json(tmp_path / 'b')['records']['iter'] == [1, 2, 3]


def test_without_timer_is_a_clear_error(tmp_path):
    runner = make_runner(tmp_path, f'notimer_{tmp_path.name}',
                         [TrainingEfficiencyHook(window=2)], timer=False)
    with pytest.raises(RuntimeError, match='IterTimerHook'):
        runner.train()
