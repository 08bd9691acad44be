"""Exact and checked resumption: SIGKILL during a save, truncated
checkpoints, configs that differ, two gloo processes."""
import os
import os.path as osp
import shutil

import pytest
import torch
from reliability_helpers import (TINY, fault_config, load, run_dist_script,
                                 same_weights, six_iterations, train_here,
                                 train_process, train_scalars)

from lmd_toolkit.engine.hooks.resume_hook import ResumeConfigError
from lmd_toolkit.utils.fileio import UnreadableFileError
from lmd_toolkit.utils import workdir
from lmd_toolkit.utils.state_dict import StateDictMismatchError
from lmd_toolkit.utils.workdir import find_resume_checkpoint


@pytest.fixture(scope='module')
def unbroken(tmp_path_factory):
    """Six iterations without a break, checkpoints after 3 and 6."""
    root = tmp_path_factory.mktemp('unbroken')
    mp = pytest.MonkeyPatch()
    try:
        train_here(root / 'wd', six_iterations(root / 'cache'),
                   monkeypatch=mp)
    finally:
        mp.undo()
    return root


def losses(work_dir, steps=(4, 5, 6)):
    return {r['step']: r['loss'] for r in train_scalars(str(work_dir))
            if r['step'] in steps}


def copy_first_half(unbroken, work_dir):
    """A work dir as a run killed after iteration 3 leaves it."""
    os.makedirs(work_dir)
    shutil.copy(unbroken / 'wd' / 'iter_3.pth', work_dir)
    with open(work_dir / 'last_checkpoint', 'w') as f:
        f.write(str(work_dir / 'iter_3.pth'))


def test_sigkill_during_a_save_then_resume_is_exact(unbroken, tmp_path,
                                                    monkeypatch):
    wd, once = tmp_path / 'wd', tmp_path / 'killed_once'
    config = fault_config(
        tmp_path, f"dict(type='KillDuringSaveHook', at_iter=6, "
        f"once_file={str(once)!r})")
    proc = train_process(wd, six_iterations(unbroken / 'cache'),
                         config=config, check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]
    # killed while writing iter_6: nothing under its name, the pointer and
    # iter_3 untouched
    assert not (wd / 'iter_6.pth').exists()
    assert (wd / 'last_checkpoint').read_text() == str(wd / 'iter_3.pth')
    assert same_weights(wd / 'iter_3.pth', unbroken / 'wd' / 'iter_3.pth')

    train_here(wd, six_iterations(unbroken / 'cache'), ['--resume'],
               monkeypatch, config=config)
    assert losses(wd) == losses(unbroken / 'wd')  # exactly, every term
    assert same_weights(wd / 'iter_6.pth', unbroken / 'wd' / 'iter_6.pth')
    # the killed writer's temporary was cleaned up by the next save
    assert not [n for n in os.listdir(wd) if '.tmp' in n]


def test_truncated_last_checkpoint_falls_back_to_the_intact_one(
        unbroken, tmp_path, monkeypatch):
    wd = tmp_path / 'wd'
    copy_first_half(unbroken, wd)
    data = (unbroken / 'wd' / 'iter_6.pth').read_bytes()
    (wd / 'iter_6.pth').write_bytes(data[:len(data) // 2])
    (wd / 'last_checkpoint').write_text(str(wd / 'iter_6.pth'))

    # an explicit truncated path: one error naming it and the intact one
    with pytest.raises(UnreadableFileError) as e:
        find_resume_checkpoint(str(wd), str(wd / 'iter_6.pth'))
    assert 'iter_6.pth' in str(e.value) and 'truncated' in str(e.value)
    assert 'iter_3.pth' in str(e.value)

    said = []
    monkeypatch.setattr(workdir, 'print_log',
                        lambda msg, **kw: said.append(msg))
    train_here(wd, six_iterations(unbroken / 'cache'), ['--resume'],
               monkeypatch)
    assert 'resuming from' in said[0] and 'iter_3.pth' in said[0]
    assert 'which is truncated' in said[0]
    assert losses(wd) == losses(unbroken / 'wd')
    assert same_weights(wd / 'iter_6.pth', unbroken / 'wd' / 'iter_6.pth')


def test_checkpoints_carry_the_resume_state(unbroken):
    state = load(unbroken / 'wd' / 'iter_3.pth')['resume_state']
    assert state['world_size'] == 1 and len(state['rng']) == 1
    assert set(state['rng'][0]) >= {'python', 'numpy', 'torch'}
    assert state['sampler']['type'] == 'DefaultSampler'
    assert state['sampler']['seed'] is not None
    assert '"CosineMaskRatio"' in state['config']


def test_another_mask_schedule_is_refused_then_allowed(unbroken, tmp_path,
                                                       monkeypatch):
    wd = tmp_path / 'wd'
    copy_first_half(unbroken, wd)
    other = six_iterations(
        unbroken / 'cache',
        extra=['default_hooks.mask_ratio.scheduler.type=UniformMaskRatio'])
    with pytest.raises(ResumeConfigError) as e:
        train_here(wd, other, ['--resume'], monkeypatch)
    message = str(e.value)
    assert ("default_hooks.mask_ratio.scheduler.type: 'CosineMaskRatio' -> "
            "'UniformMaskRatio'") in message
    assert '--resume-with-changes' in message
    assert not (wd / 'iter_6.pth').exists()  # stopped before training

    train_here(wd, other, ['--resume', '--resume-with-changes'], monkeypatch)
    ratios = [r['mask_ratio'] for r in train_scalars(str(wd))]
    cosine = [r['mask_ratio'] for r in train_scalars(str(unbroken / 'wd'))]
    assert len(ratios) == 3 and ratios != cosine[3:]  # the new schedule


def test_another_width_names_the_key_then_the_shapes(unbroken, tmp_path,
                                                     monkeypatch):
    wd = tmp_path / 'wd'
    copy_first_half(unbroken, wd)
    wider = six_iterations(
        unbroken / 'cache',
        extra=['model.backbone.arch.embed_dims=60', 'model.neck.embed_dims=60'])
    with pytest.raises(ResumeConfigError, match='embed_dims: 48 -> 60'):
        train_here(wd, wider, ['--resume'], monkeypatch)
    with pytest.raises(StateDictMismatchError) as e:
        train_here(wd, wider, ['--resume', '--resume-with-changes'],
                   monkeypatch)
    assert 'with another shape' in str(e.value)
    assert '(model (60,), file (48,))' in str(e.value)
    assert 'iter_3.pth' in str(e.value)


def test_two_gloo_processes_resume_to_the_unbroken_run(tmp_path):
    cache = tmp_path / 'cache'

    def launch(work_dir, *extra):
        proc = run_dist_script([
            'tools/dist_train.sh', TINY, '2', '--work-dir',
            str(work_dir), *extra, '--cfg-options', *six_iterations(cache)
        ])
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    launch(tmp_path / 'unbroken')
    state = load(tmp_path / 'unbroken' / 'iter_3.pth')['resume_state']
    assert state['world_size'] == 2 and len(state['rng']) == 2
    assert not torch.equal(state['rng'][0]['torch'], state['rng'][1]['torch'])
    wd = tmp_path / 'resumed'
    os.makedirs(wd)
    shutil.copy(tmp_path / 'unbroken' / 'iter_3.pth', wd)
    (wd / 'last_checkpoint').write_text(str(wd / 'iter_3.pth'))
    launch(wd, '--resume')
    a, b = losses(tmp_path / 'unbroken'), losses(wd)
    assert a.keys() == b.keys() == {4, 5, 6}
    assert all(abs(a[k] - b[k]) <= 1e-6 * abs(a[k]) for k in a)
    sa = load(tmp_path / 'unbroken' / 'iter_6.pth')['state_dict']
    sb = load(wd / 'iter_6.pth')['state_dict']
    assert max((sa[k].float() - sb[k].float()).abs().max().item()
               for k in sa) <= 1e-6
    assert osp.getsize(wd / 'iter_6.pth') > 0
