"""The launch scripts as a cluster runs them: tools/dist_train.sh started
once per node (two "nodes" on this machine), and tools/slurm_train.sh /
slurm_test.sh through stand-ins for SLURM's ``srun`` and ``scontrol`` that
start one process per task with the variables srun sets. All on CPU (gloo).
"""
import json
import os
import os.path as osp
import random
import signal
import socket
import subprocess
import sys

import pytest

from tool_helpers import ROOT, TINY_CONFIG, train_scalars

pytestmark = pytest.mark.usefixtures('single_thread')

# Two iterations, a checkpoint at the second, no validation, no images.
SHORT_RUN = [
    '--cfg-options', 'train_cfg.max_iters=2', 'val_cfg=None',
    'val_dataloader=None', 'val_evaluator=None',
    'default_hooks.checkpoint.interval=2',
    'default_hooks.visualization.interval=100'
]

# srun for one machine: the options slurm_train.sh passes, the variables a
# real srun sets for each task, one process per task; records its argv.
SRUN = '''\
"""Stand-in for SLURM's srun: runs the tasks of one step on this machine."""
import argparse, json, os, os.path as osp, subprocess, sys, time

parser = argparse.ArgumentParser(prog='srun')
parser.add_argument('-p', '--partition', required=True)
parser.add_argument('-J', '--job-name', required=True)
parser.add_argument('--gres')
parser.add_argument('-n', '--ntasks', type=int, required=True)
parser.add_argument('--ntasks-per-node', type=int, required=True)
parser.add_argument('-c', '--cpus-per-task', type=int, default=1)
parser.add_argument('-K', '--kill-on-bad-exit', type=int, default=0)
parser.add_argument('-t', '--time')
parser.add_argument('command', nargs=argparse.REMAINDER)
args = parser.parse_args()
with open(osp.join(osp.dirname(osp.abspath(__file__)), 'srun.jsonl'),
          'a') as f:
    f.write(json.dumps(dict(argv=sys.argv[1:],
                            MASTER_PORT=os.environ.get('MASTER_PORT'))))
    f.write('\\n')
per_node = min(args.ntasks_per_node, args.ntasks)
counts = [per_node] * (args.ntasks // per_node)
counts += [args.ntasks % per_node] if args.ntasks % per_node else []
# Node i is 127.0.0.<i+1>: every one of them is this machine.
hosts = [f'127.0.0.{i + 1}' for i in range(len(counts))]
nodes = hosts[0] if len(hosts) == 1 else f'127.0.0.[1-{len(hosts)}]'
job_id = os.environ.get('SLURM_JOB_ID', str(os.getpid()))
step = dict(
    SLURM_JOB_ID=job_id, SLURM_JOBID=job_id, SLURM_STEP_ID='0',
    SLURM_JOB_NAME=args.job_name, SLURM_JOB_PARTITION=args.partition,
    SLURM_NTASKS=str(args.ntasks), SLURM_NPROCS=str(args.ntasks),
    SLURM_STEP_NUM_TASKS=str(args.ntasks), SLURM_NNODES=str(len(hosts)),
    SLURM_JOB_NUM_NODES=str(len(hosts)),
    SLURM_STEP_NUM_NODES=str(len(hosts)), SLURM_NODELIST=nodes,
    SLURM_JOB_NODELIST=nodes, SLURM_STEP_NODELIST=nodes,
    SLURM_TASKS_PER_NODE=','.join(map(str, counts)),
    SLURM_CPUS_PER_TASK=str(args.cpus_per_task))
procs = []
for rank in range(args.ntasks):
    node = rank // per_node
    env = dict(os.environ, **step, SLURM_PROCID=str(rank),
               SLURM_LOCALID=str(rank % per_node), SLURM_NODEID=str(node),
               SLURMD_NODENAME=hosts[node])
    try:
        procs.append(subprocess.Popen(args.command, env=env))
    except OSError as error:
        sys.exit(f'srun: error: execve(): {args.command[0]}: {error}')
codes = [None] * len(procs)
while None in codes:
    time.sleep(0.1)
    for rank, proc in enumerate(procs):
        if codes[rank] is None and proc.poll() is not None:
            codes[rank] = proc.returncode
            if proc.returncode and args.kill_on_bad_exit:
                print(f'srun: error: task {rank}: Exited with exit code '
                      f'{proc.returncode}', file=sys.stderr)
                for other in procs:
                    if other.poll() is None:
                        other.terminate()
sys.exit(max(abs(code) for code in codes))
'''

# scontrol's "show hostnames LIST": one host per line, brackets expanded.
SCONTROL = '''\
"""Stand-in for SLURM's scontrol: only "show hostnames NODELIST"."""
import re, sys

if sys.argv[1:3] not in (['show', 'hostnames'], ['show', 'hostname']):
    sys.exit('scontrol stand-in: only "show hostnames" is implemented')
for prefix, ranges in re.findall(r'([^,\\[]+)(?:\\[([^\\]]*)\\])?,?',
                                 sys.argv[3]):
    if not ranges:
        print(prefix)
    for part in ranges.split(',') if ranges else []:
        first, _, last = part.partition('-')
        for i in range(int(first), int(last or first) + 1):
            print(f'{prefix}{i:0{len(first)}d}')
'''


def free_port(low, high):
    """A TCP port between ``low`` and ``high`` that is free now (searched
    from a random one, so that concurrent runs seldom pick the same)."""
    start = random.SystemRandom().randint(low, high)
    for port in [*range(start, high + 1), *range(low, start)]:
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    raise RuntimeError(f'no free port in {low}..{high}')


def launcher_env(**extra):
    """The test session's environment for a launch script on CPU, without
    the rendezvous variables a script or the toolkit has to set."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith('SLURM_') and k not in (
            'RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT',
            'PORT', 'NNODES', 'NODE_RANK', 'GPUS', 'GPUS_PER_NODE', 'GRES')
    }
    env.update(PYTHON=sys.executable, OMP_NUM_THREADS='1',
               CUDA_VISIBLE_DEVICES='')
    env.update(extra)
    return env


def start(args, env):
    """``bash ARGS`` from the repository root in a session of its own (so
    that :func:`finish` can stop torchrun's or srun's children too)."""
    return subprocess.Popen(['bash', *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def finish(procs, timeout=300):
    """The output of each of ``procs``; any still running after
    ``timeout`` seconds is stopped with its children."""
    try:
        return [proc.communicate(timeout=timeout)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def checkpoints(work_dir):
    return sorted(p for p in os.listdir(work_dir) if p.endswith('.pth'))


@pytest.fixture
def slurm_bin(tmp_path):
    """A folder with the srun and scontrol stand-ins, to put first on
    PATH; ``srun.jsonl`` in it collects srun's recorded calls."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, code in (('srun', SRUN), ('scontrol', SCONTROL)):
        path = bin_dir / name
        path.write_text(f'#!{sys.executable}\n{code}')
        path.chmod(0o755)
    return bin_dir


def srun_calls(bin_dir):
    with open(bin_dir / 'srun.jsonl') as f:
        return [json.loads(line) for line in f]


def test_dist_train_two_nodes_on_one_machine(tmp_path):
    # Two launches of the script, one process each, as on two nodes; each
    # "node" has its own work dir, so that node 1 writing anything shows.
    port = free_port(20000, 29999)
    work_dirs = [str(tmp_path / f'node{rank}') for rank in (0, 1)]
    procs = [
        start(['tools/dist_train.sh', TINY_CONFIG, '1', '--work-dir',
               work_dirs[rank], *SHORT_RUN],
              launcher_env(NNODES='2', NODE_RANK=str(rank),
                           MASTER_ADDR='127.0.0.1', PORT=str(port)))
        for rank in (0, 1)
    ]
    outs = finish(procs)
    for proc, out in zip(procs, outs):
        assert proc.returncode == 0, out[-5000:]
    for rank in (0, 1):
        assert f'gloo process group on CPU (rank {rank} of 2)' in outs[rank]
    assert 'GPU number: 2' in outs[0]  # mmengine's world size
    # Node 1 is told that 127.0.0.1 only works when node 0 is this machine.
    assert 'on another node set MASTER_ADDR' in outs[1]
    assert 'on another node set MASTER_ADDR' not in outs[0]
    assert checkpoints(work_dirs[0]) == ['iter_2.pth']
    assert [r['step'] for r in train_scalars(work_dirs[0])] == [1, 2]
    assert not osp.exists(work_dirs[1]) or checkpoints(work_dirs[1]) == []


def test_dist_train_refuses_bad_nproc():
    proc = subprocess.run(['bash', 'tools/dist_train.sh', TINY_CONFIG, '0'],
                          cwd=ROOT, capture_output=True, text=True,
                          env=launcher_env(PYTHON='false'))
    assert proc.returncode == 2
    assert proc.stderr.startswith('Usage: tools/dist_train.sh CONFIG NPROC')
    assert "NPROC must be a positive integer, got '0'" in proc.stderr


def test_slurm_train_and_test_through_srun(tmp_path, slurm_bin):
    # The job id gives a free port (20000 + id % 10000); torch's default
    # 29500 is held meanwhile, so a run that fell back to it would fail.
    port = free_port(20000, 29999)
    job_id = str(4_000_000 + port - 20000)
    work_dir = str(tmp_path / 'work')
    blocker = socket.socket()
    try:
        blocker.bind(('127.0.0.1', 29500))
        blocker.listen()
    except OSError:
        pass  # taken by someone else: as good
    env = launcher_env(PATH=f'{slurm_bin}:{os.environ["PATH"]}',
                       SLURM_JOB_ID=job_id, GPUS='2', GPUS_PER_NODE='2',
                       CPUS_PER_TASK='1', SRUN_ARGS='--time=10')
    try:
        train = start(['tools/slurm_train.sh', 'cpu', 'lmd', TINY_CONFIG,
                       work_dir, *SHORT_RUN], env)
        (out, ) = finish([train])
    finally:
        blocker.close()
    assert train.returncode == 0, out[-5000:]
    (call, ) = srun_calls(slurm_bin)
    argv = call['argv']
    command = argv.index(sys.executable)
    assert argv[:command] == [
        '-p', 'cpu', '--job-name=lmd', '--gres=gpu:2', '--ntasks=2',
        '--ntasks-per-node=2', '--cpus-per-task=1', '--kill-on-bad-exit=1',
        '--time=10'
    ]
    assert argv[command + 1:command + 7] == [
        '-u', osp.join(ROOT, 'tools', 'train.py'), TINY_CONFIG,
        f'--work-dir={work_dir}', '--launcher', 'slurm'
    ]
    # Both tasks joined one gloo group of two; rank 0 wrote the run.
    for rank in (0, 1):
        assert f'gloo process group on CPU (rank {rank} of 2)' in out
    assert 'GPU number: 2' in out
    assert checkpoints(work_dir) == ['iter_2.pth']
    assert [r['step'] for r in train_scalars(work_dir)] == [1, 2]

    # slurm_test.sh shares the srun step (tools/launchers/srun.sh): its
    # tasks run test.py with the checkpoint (PYTHON=true: no second run).
    env['PYTHON'] = 'true'
    proc = subprocess.run(
        ['bash', 'tools/slurm_test.sh', 'cpu', 'lmd-test', TINY_CONFIG,
         osp.join(work_dir, 'iter_2.pth')],
        cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    argv = srun_calls(slurm_bin)[1]['argv']
    assert '--ntasks=2' in argv and '--job-name=lmd-test' in argv
    assert argv[argv.index('true') + 1:] == [
        '-u', osp.join(ROOT, 'tools', 'test.py'), TINY_CONFIG,
        osp.join(work_dir, 'iter_2.pth'), '--launcher', 'slurm'
    ]


def run_slurm_script(slurm_bin, **variables):
    """``tools/slurm_train.sh`` with ``variables`` and ``PYTHON=true``: the
    tasks exit at once, srun's recorded call is what is left."""
    env = launcher_env(PATH=f'{slurm_bin}:{os.environ["PATH"]}',
                       PYTHON='true', **variables)
    return subprocess.run(
        ['bash', 'tools/slurm_train.sh', 'cpu', 'lmd', TINY_CONFIG, 'wd'],
        cwd=ROOT, capture_output=True, text=True, env=env)


def test_slurm_train_variables_reach_srun(slurm_bin):
    proc = run_slurm_script(slurm_bin, GPUS='16', GPUS_PER_NODE='8',
                            GRES='none', PORT='23456')
    assert proc.returncode == 0, proc.stderr
    proc = run_slurm_script(slurm_bin, GPUS='2')  # below GPUS_PER_NODE=8
    assert proc.returncode == 0, proc.stderr
    cpu_only, small = srun_calls(slurm_bin)
    assert '--ntasks=16' in cpu_only['argv']
    assert '--ntasks-per-node=8' in cpu_only['argv']
    assert not any(a.startswith('--gres') for a in cpu_only['argv'])
    assert cpu_only['MASTER_PORT'] == '23456'
    # One node with the two GPUs it uses, not eight.
    assert small['argv'][3:6] == [
        '--gres=gpu:2', '--ntasks=2', '--ntasks-per-node=2'
    ]
    assert small['MASTER_PORT'] is None  # the toolkit derives it


def test_slurm_train_refuses_uneven_nodes(slurm_bin):
    proc = run_slurm_script(slurm_bin, GPUS='12', GPUS_PER_NODE='8')
    assert proc.returncode == 2
    assert 'GPUS=12 is not a multiple of GPUS_PER_NODE=8' in proc.stderr
    assert not (slurm_bin / 'srun.jsonl').exists()


@pytest.fixture
def slurm_task_env(monkeypatch, slurm_bin):
    """This process's environment as srun gives it to task 1 of 2 (job
    4242), with stale torchrun variables from the submitting shell."""
    for key in list(os.environ):
        if key.startswith('SLURM_'):
            monkeypatch.delenv(key)
    for key in ('MASTER_ADDR', 'MASTER_PORT'):
        # set first: pytest restores only the variables that existed
        monkeypatch.setenv(key, '')
        monkeypatch.delenv(key)
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv('PATH', f'{slurm_bin}:{os.environ["PATH"]}')
    for key, value in dict(SLURM_PROCID='1', SLURM_LOCALID='1',
                           SLURM_NTASKS='2', SLURM_JOB_ID='4242',
                           SLURM_NODELIST='gpu[07-08]',
                           SLURM_STEP_NODELIST='gpu[08-09]').items():
        monkeypatch.setenv(key, value)


def test_slurm_env_gives_rank_address_and_job_port(slurm_task_env):
    from lmd_toolkit.utils.compat import _slurm_env_to_torchrun_env
    _slurm_env_to_torchrun_env()
    assert (os.environ['RANK'], os.environ['WORLD_SIZE'],
            os.environ['LOCAL_RANK']) == ('1', '2', '1')
    assert os.environ['MASTER_ADDR'] == 'gpu08'  # the step's first node
    assert os.environ['MASTER_PORT'] == '24242'  # 20000 + 4242 % 10000


def test_slurm_env_keeps_given_address_and_port(slurm_task_env,
                                                monkeypatch):
    from lmd_toolkit.utils.compat import _slurm_env_to_torchrun_env
    monkeypatch.setenv('MASTER_PORT', '23456')
    monkeypatch.setenv('MASTER_ADDR', 'head')
    monkeypatch.setenv('PATH', '/nonexistent')  # scontrol not needed
    _slurm_env_to_torchrun_env()
    assert (os.environ['MASTER_ADDR'], os.environ['MASTER_PORT']) == (
        'head', '23456')


def test_slurm_env_without_scontrol_names_the_fix(slurm_task_env,
                                                  monkeypatch):
    from lmd_toolkit.utils.compat import _slurm_env_to_torchrun_env
    monkeypatch.setenv('PATH', '/nonexistent')
    with pytest.raises(RuntimeError,
                       match=r"scontrol.*'gpu\[08-09\]'.*set MASTER_ADDR"):
        _slurm_env_to_torchrun_env()


def test_slurm_env_outside_srun_is_a_clear_error(slurm_task_env,
                                                 monkeypatch):
    from lmd_toolkit.utils.compat import _slurm_env_to_torchrun_env
    monkeypatch.delenv('SLURM_PROCID')
    with pytest.raises(RuntimeError,
                       match=r"\['SLURM_PROCID'\].*tools/slurm_train.sh"):
        _slurm_env_to_torchrun_env()


def test_slurm_env_is_translated_on_gpu_machines(slurm_task_env,
                                                 monkeypatch):
    # mmengine initialises nccl itself, but the work-dir lock reads RANK
    # before: without it every task would take the lock as rank 0.
    import torch

    from lmd_toolkit.utils.compat import init_cpu_distributed
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert init_cpu_distributed('slurm') is False
    assert os.environ['RANK'] == '1'
    assert os.environ['MASTER_PORT'] == '24242'


def test_scontrol_stand_in_expands_like_scontrol(slurm_bin):
    proc = subprocess.run(
        [str(slurm_bin / 'scontrol'), 'show', 'hostnames',
         'gpu[07-09,11],login1'], capture_output=True, text=True)
    assert proc.stdout.split() == [
        'gpu07', 'gpu08', 'gpu09', 'gpu11', 'login1'
    ]
