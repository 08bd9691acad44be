"""MAT@k: the definition, the hook's timing, and an end-to-end digits run
whose tools/test.py accuracy matches the last validation."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from lmd_toolkit.engine.hooks import AccuracyIncreaseTimeHook
from lmd_toolkit.engine.hooks import accuracy_time_hook as hook_module
from lmd_toolkit.engine.hooks.accuracy_time_hook import \
    mean_accuracy_increase_time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(osp.dirname(osp.abspath(__file__)), 'data',
                'tiny_digits_finetune.py')


def test_definition_and_edge_cases():
    assert mean_accuracy_increase_time([10.0, 30.0, 70.0],
                                       [20.0, 50.0, 60.0]) == pytest.approx(
                                           60.0 / 40.0)
    # A dip in between is netted, not skipped.
    assert mean_accuracy_increase_time([0.0, 1.0, 2.0],
                                       [10.0, 5.0, 20.0]) == pytest.approx(0.2)
    assert mean_accuracy_increase_time([5.0], [50.0]) is None
    assert mean_accuracy_increase_time([1.0, 2.0], [50.0, 50.0]) is None
    assert mean_accuracy_increase_time([1.0, 2.0], [50.0, 40.0]) is None


class FakeHub:

    def __init__(self):
        self.scalars = {}

    def update_scalar(self, key, value):
        self.scalars[key] = value


class FakeRunner:

    def __init__(self, work_dir):
        import logging
        self.work_dir = work_dir
        self.iter, self.epoch = 0, 0
        self.message_hub = FakeHub()
        self.logger = logging.getLogger('fake')


def test_validation_time_is_excluded(tmp_path, monkeypatch):
    clock = iter([100.0, 110.0, 150.0, 160.0, 190.0, 200.0])
    monkeypatch.setattr(hook_module.time, 'perf_counter', lambda: next(clock))
    hook = AccuracyIncreaseTimeHook(plot=False)
    runner = FakeRunner(str(tmp_path))
    hook.before_train(runner)  # t = 100
    hook.before_val_epoch(runner)  # t = 110: 10 s of training
    hook.after_val_epoch(runner, {'accuracy/top1': 20.0,
                                  'accuracy/top5': 60.0})  # restart at 150
    hook.before_val_epoch(runner)  # t = 160: 10 + 10 s
    hook.after_val_epoch(runner, {'accuracy/top1': 30.0,
                                  'accuracy/top5': 65.0})  # restart at 190
    assert [p['train_seconds'] for p in hook.series] == [10.0, 20.0]
    assert hook.mat() == {1: pytest.approx(1.0), 5: pytest.approx(2.0)}
    assert runner.message_hub.scalars['val/MAT@1'] == pytest.approx(1.0)
    with open(tmp_path / 'accuracy_time.json') as f:
        record = json.load(f)
    assert record['MAT@5'] == pytest.approx(2.0)
    # A validation outside training (runner.val()) is not recorded.
    hook.after_train(runner)  # t = 200: 30 s of training in all
    hook.before_val_epoch(runner)
    hook.after_val_epoch(runner, {'accuracy/top1': 99.0,
                                  'accuracy/top5': 99.0})
    assert len(hook.series) == 2
    # Resume keeps the series and the time.
    ckpt = {}
    hook.before_save_checkpoint(runner, ckpt)
    other = AccuracyIncreaseTimeHook()
    other.after_load_checkpoint(runner, ckpt)
    assert other.series == hook.series and other.train_time == 30.0


def test_missing_metric_names_the_fix(tmp_path):
    hook = AccuracyIncreaseTimeHook(plot=False)
    hook._during_training = True
    with pytest.raises(KeyError, match='mmpretrain.Accuracy'):
        hook.after_val_epoch(FakeRunner(str(tmp_path)), {'PSNR': 1.0})


def run(args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope='module')
def finetuned(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('ft'))
    run(['tools/train.py', TINY, '--work-dir', work_dir])
    return work_dir


def val_records(work_dir):
    run_dir = sorted(d for d in os.listdir(work_dir)
                     if osp.isdir(osp.join(work_dir, d, 'vis_data')))[-1]
    with open(osp.join(work_dir, run_dir, 'vis_data', 'scalars.json')) as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if 'accuracy/top1' in r]


def test_mat_equals_hand_computation_from_the_log(finetuned):
    records = val_records(finetuned)
    assert len(records) == 3
    with open(osp.join(finetuned, 'accuracy_time.json')) as f:
        saved = json.load(f)
    for k in (1, 5):
        t = [r['train_seconds'] for r in records]
        a = [r[f'accuracy/top{k}'] for r in records]
        hand = (t[-1] - t[0]) / (a[-1] - a[0]) if a[-1] > a[0] else None
        assert saved[f'MAT@{k}'] == pytest.approx(hand)
        logged = records[-1][f'MAT@{k}']
        if hand is None:
            assert logged != logged  # NaN
        else:
            assert logged == pytest.approx(hand)
    assert osp.isfile(osp.join(finetuned, 'accuracy_time.png'))
    assert records[-1]['accuracy/top1'] > 30  # it learns (chance is 10)


def test_tools_test_reproduces_last_validation(finetuned, tmp_path):
    ckpt = osp.join(finetuned, 'epoch_3.pth')
    run(['tools/test.py', TINY, ckpt, '--work-dir', str(tmp_path)])
    with open(tmp_path / 'test_results.json') as f:
        metrics = json.load(f)['metrics']
    last = val_records(finetuned)[-1]
    assert metrics['accuracy/top1'] == pytest.approx(last['accuracy/top1'])
    assert metrics['accuracy/top5'] == pytest.approx(last['accuracy/top5'])
