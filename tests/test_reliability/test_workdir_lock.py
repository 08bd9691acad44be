"""One training run per work dir: a second concurrent run is refused with
the first one's PID; the lock of a killed run is taken over."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from reliability_helpers import HERE, ROOT, fault_config, six_iterations

from lmd_toolkit.utils import workdir
from lmd_toolkit.utils.workdir import (LOCK_NAME, WorkDirLockedError,
                                       work_dir_lock)


def test_two_concurrent_runs_then_a_stale_lock(tmp_path, monkeypatch):
    wd = tmp_path / 'wd'
    holder = fault_config(tmp_path, "dict(type='SleepHook', seconds=120)")
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=HERE)
    first = subprocess.Popen(
        [sys.executable, 'tools/train.py', holder, '--work-dir', str(wd),
         '--cfg-options', *six_iterations(tmp_path / 'cache')],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        lock = wd / LOCK_NAME
        deadline = time.time() + 120
        # holding the lock and asleep in before_train (after the cache hook)
        while not (wd / 'latent_cache.json').exists():
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.2)
        time.sleep(1)
        assert json.loads(lock.read_text())['pid'] == first.pid
        before = sorted(os.listdir(wd))

        second = subprocess.run(
            [sys.executable, 'tools/train.py', holder, '--work-dir',
             str(wd), '--cfg-options', *six_iterations(tmp_path / 'cache')],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode != 0
        assert 'WorkDirLockedError' in second.stderr
        assert f'in use by another training run: PID {first.pid}' in \
            second.stderr
        assert sorted(os.listdir(wd)) == before  # wrote nothing
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()

    # the killed run's lock file stays behind; the next run takes it over
    assert json.loads((wd / LOCK_NAME).read_text())['pid'] == first.pid
    said = []
    monkeypatch.setattr(workdir, 'print_log', lambda msg, **kw: said.append(
        msg))
    with work_dir_lock(str(wd)) as path:
        assert json.loads(open(path).read())['pid'] == os.getpid()
    assert f'took over the lock of PID {first.pid}' in said[0]
    assert not (wd / LOCK_NAME).exists()  # released on exit


def test_a_held_lock_refuses_in_the_same_process_too(tmp_path):
    with work_dir_lock(str(tmp_path)):
        with pytest.raises(WorkDirLockedError,
                           match=f'PID {os.getpid()} on .* pass another '
                           '--work-dir'):
            with work_dir_lock(str(tmp_path)):
                pass
