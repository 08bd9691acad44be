"""Each compatibility shim, with the failure it prevents (subprocesses keep
the process-wide shims of the test session out)."""
import socket
import subprocess
import sys
import textwrap

import pytest

TOY_RUN = textwrap.dedent('''
    import sys, torch
    from torch import nn
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    if sys.argv[2] == 'shim':
        from lmd_toolkit.utils.compat import apply_compat_shims
        apply_compat_shims()

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return dict(loss=self.linear(inputs).pow(2).mean())

    def run(max_iters, resume):
        runner = Runner(
            model=Toy(), work_dir=sys.argv[1],
            train_dataloader=dict(
                dataset=[dict(inputs=torch.randn(2)) for _ in range(4)],
                sampler=dict(type='DefaultSampler', shuffle=False),
                batch_size=2, collate_fn=dict(type='default_collate')),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            default_hooks=dict(checkpoint=dict(
                type='CheckpointHook', interval=2, by_epoch=False)),
            resume=resume)
        runner.train()
        return runner

    run(2, False)
    torch.load(sys.argv[1] + '/iter_2.pth')  # torch's default: weights_only
    runner = run(4, True)
    print('RESUMED_TO', runner.iter)
''')


def run_python(code, *args, env=None):
    return subprocess.run([sys.executable, '-c', code, *args],
                          capture_output=True,
                          text=True,
                          env=env,
                          timeout=300)


def test_checkpoint_shim_is_needed(tmp_path):
    proc = run_python(TOY_RUN, str(tmp_path), 'no-shim')
    assert proc.returncode != 0
    assert 'HistoryBuffer' in proc.stderr


def test_checkpoint_shim_loads_and_resumes(tmp_path):
    proc = run_python(TOY_RUN, str(tmp_path), 'shim')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'RESUMED_TO 4' in proc.stdout


def test_checkpoint_shim_keeps_the_safe_loader(tmp_path):
    code = textwrap.dedent('''
        import os, sys, torch
        from lmd_toolkit.utils.compat import apply_compat_shims
        apply_compat_shims()

        class Evil:
            def __reduce__(self):
                return (os.system, ('echo pwned',))

        torch.save({'x': Evil()}, sys.argv[1])
        try:
            torch.load(sys.argv[1])
        except Exception as e:
            print('REFUSED', type(e).__name__)
    ''')
    proc = run_python(code, str(tmp_path / 'evil.pth'))
    assert 'REFUSED UnpicklingError' in proc.stdout, proc.stderr
    assert 'pwned' not in proc.stdout


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


DIST_ENV = dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0',
                MASTER_ADDR='127.0.0.1', CUDA_VISIBLE_DEVICES='')


@pytest.fixture
def dist_env(monkeypatch):
    import os
    env = dict(os.environ, **DIST_ENV, MASTER_PORT=str(free_port()))
    return env


def test_mmengine_init_dist_fails_on_cpu(dist_env):
    code = ('from mmengine.dist import init_dist\n'
            "init_dist('pytorch', backend='gloo')\n")
    proc = run_python(code, env=dist_env)
    assert proc.returncode != 0
    assert 'RuntimeError' in proc.stderr


def test_cpu_distributed_shims(dist_env):
    code = textwrap.dedent('''
        import torch, torch.distributed as dist
        from torch import nn
        from mmengine.model import MMDistributedDataParallel
        from lmd_toolkit.engine import LMDDistributedDataParallel
        from lmd_toolkit.utils.compat import init_cpu_distributed
        assert init_cpu_distributed('pytorch') is True
        print('BACKEND', dist.get_backend())
        try:
            MMDistributedDataParallel(module=nn.Linear(2, 1), device_ids=[0])
        except ValueError as e:
            print('MMENGINE_WRAPPER_FAILS')
        model = LMDDistributedDataParallel(
            module=nn.Linear(2, 1), device_ids=[0])
        model(torch.randn(3, 2)).sum().backward()
        print('GRAD', model.module.weight.grad is not None)
        dist.destroy_process_group()
    ''')
    proc = run_python(code, env=dist_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'BACKEND gloo' in proc.stdout
    assert 'MMENGINE_WRAPPER_FAILS' in proc.stdout
    assert 'GRAD True' in proc.stdout


def test_init_cpu_distributed_names_missing_variables(monkeypatch):
    from lmd_toolkit.utils.compat import init_cpu_distributed
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match=r"'RANK', 'WORLD_SIZE'.*"
                       'tools/dist_train.sh'):
        init_cpu_distributed('pytorch')
    assert init_cpu_distributed('none') is False


ATOMIC_PUT = textwrap.dedent('''
    import sys
    from mmengine.fileio.backends import LocalBackend
    if sys.argv[2] == 'shim':
        from lmd_toolkit.utils.compat import atomic_local_backend
        atomic_local_backend()
    path = sys.argv[1]
    LocalBackend().put(b'good checkpoint', path)
    try:
        LocalBackend().put('not bytes: the write fails', path)
    except TypeError:
        pass
    print('CONTENT', open(path, 'rb').read())
''')


@pytest.mark.parametrize('mode', ['plain', 'shim'])
def test_local_backend_shim_keeps_the_old_file_on_a_failed_write(
        tmp_path, mode):
    """mmengine's put truncates the target before writing: a failure loses
    the previous file. Through the shim the old bytes stay."""
    proc = run_python(ATOMIC_PUT, str(tmp_path / 'ckpt.pth'), mode)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = "b'good checkpoint'" if mode == 'shim' else "b''"
    assert f'CONTENT {expected}' in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth']



SAME_SECOND_RUNNERS = textwrap.dedent('''
    import os, sys, time
    from torch import nn
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    if sys.argv[2] == 'shim':
        from lmd_toolkit.utils.compat import apply_compat_shims
        apply_compat_shims()
    time.time = lambda: 1.8e9  # both runners start in the same second

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return self.linear(inputs)

    for run in ('first', 'second'):
        runner = Runner(model=Toy(), work_dir=os.path.join(sys.argv[1], run))
        print('LOG_DIR', os.path.relpath(runner.log_dir, sys.argv[1]))
        print('VIS_DIR', os.path.relpath(
            runner.visualizer._vis_backends['LocalVisBackend']._save_dir,
            sys.argv[1]))
''')


@pytest.mark.parametrize('mode', ['plain', 'shim'])
def test_runners_of_one_second_get_their_own_logs(tmp_path, mode):
    """Two Runners built in one process within one second: mmengine hands
    the second one the first one's visualizer, so its config and scalars go
    into the first run's directory. Through the shim each has its own."""
    proc = run_python(SAME_SECOND_RUNNERS, str(tmp_path), mode)
    assert proc.returncode == 0, proc.stderr[-2000:]
    vis_dirs = [line.split()[1] for line in proc.stdout.splitlines()
                if line.startswith('VIS_DIR')]
    log_dirs = [line.split()[1] for line in proc.stdout.splitlines()
                if line.startswith('LOG_DIR')]
    assert [d.split('/')[0] for d in log_dirs] == ['first', 'second']
    if mode == 'shim':
        assert [d.split('/')[0] for d in vis_dirs] == ['first', 'second']
        assert log_dirs[1] == log_dirs[0].replace('first', 'second') + '_2'
    else:
        assert [d.split('/')[0] for d in vis_dirs] == ['first', 'first']
