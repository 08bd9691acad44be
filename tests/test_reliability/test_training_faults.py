"""NaN / Inf during training and checkpoint rotation: the good checkpoints
survive, the bad step is never saved."""
import os
import re

import pytest
import torch
from reliability_helpers import (fault_config, load, six_iterations,
                                 train_here, train_scalars)

from lmd_toolkit.engine.hooks import NonFiniteTrainingError


def checkpoints(work_dir):
    return sorted(n for n in os.listdir(work_dir)
                  if re.fullmatch(r'iter_\d+\.pth', n))


def all_finite(path):
    return all(bool(torch.isfinite(t).all())
               for t in load(path)['state_dict'].values()
               if t.is_floating_point())


def test_nan_loss_stops_and_keeps_the_good_checkpoints(tmp_path, monkeypatch):
    wd = tmp_path / 'wd'
    config = fault_config(tmp_path, "dict(type='PoisonLossHook', iters=[3])")
    options = six_iterations(tmp_path / 'cache', interval=1,
                             extra=['default_hooks.checkpoint.max_keep_ckpts=2'])
    with pytest.raises(NonFiniteTrainingError) as e:
        train_here(wd, options, monkeypatch=monkeypatch, config=config)
    message = str(e.value)
    assert message.startswith('Iteration 3 of 6:')
    assert 'loss=nan' in message and 'non-finite gradients' in message
    assert 'iter_2.pth' in message  # the last good checkpoint, named
    # nothing of iteration 3 on disk; the two newest good ones kept
    assert checkpoints(wd) == ['iter_1.pth', 'iter_2.pth']
    assert (wd / 'last_checkpoint').read_text().endswith('iter_2.pth')
    assert all(all_finite(wd / n) for n in checkpoints(wd))


def test_skipping_bad_steps_is_opt_in(tmp_path, monkeypatch):
    wd = tmp_path / 'wd'
    config = fault_config(tmp_path, "dict(type='PoisonLossHook', iters=[3])")
    options = six_iterations(
        tmp_path / 'cache', interval=1,
        extra=['default_hooks.non_finite.max_bad_steps=2'])
    train_here(wd, options, monkeypatch=monkeypatch, config=config)
    assert checkpoints(wd) == [f'iter_{i}.pth' for i in range(1, 7)]
    assert all(all_finite(wd / n) for n in checkpoints(wd))
    # the poisoned step was skipped: iteration 3 left the weights as they were
    a, b = (load(wd / f'iter_{i}.pth')['state_dict'] for i in (2, 3))
    assert all(torch.equal(a[k], b[k]) for k in a)
    logs = ''.join(p.read_text() for p in wd.glob('*/*.log'))
    assert 'Iteration 3 of 6: non-finite loss term(s) loss' in logs
    assert 'Skipped this step (1 in a row, stopping at 2)' in logs
    assert len(train_scalars(str(wd))) == 6


def test_diverging_learning_rate_never_saves_non_finite_weights(
        tmp_path, monkeypatch):
    wd = tmp_path / 'wd'
    options = six_iterations(
        tmp_path / 'cache', interval=1,
        extra=['optim_wrapper.optimizer.lr=1e30',
               'optim_wrapper.clip_grad=None'])
    with pytest.raises(NonFiniteTrainingError, match='Iteration [0-9]+ of 6'):
        train_here(wd, options, monkeypatch=monkeypatch)
    assert all(all_finite(wd / n) for n in checkpoints(wd))


def test_a_refused_save_deletes_no_older_checkpoint(tmp_path, monkeypatch):
    """mmengine's CheckpointHook deletes the oldest checkpoint before it
    saves; the toolkit's saves first."""
    wd = tmp_path / 'wd'
    config = fault_config(tmp_path,
                          "dict(type='PoisonWeightsHook', at_iter=3)")
    options = six_iterations(tmp_path / 'cache', interval=1,
                             extra=['default_hooks.checkpoint.max_keep_ckpts=2'])
    with pytest.raises(NonFiniteTrainingError,
                       match='Refusing to save a checkpoint at iteration 3'):
        train_here(wd, options, monkeypatch=monkeypatch, config=config)
    assert checkpoints(wd) == ['iter_1.pth', 'iter_2.pth']
    assert (wd / 'last_checkpoint').read_text().endswith('iter_2.pth')
    assert not [n for n in os.listdir(wd) if '.tmp' in n]


def test_rotation_still_keeps_max_keep_ckpts(tmp_path, monkeypatch):
    wd = tmp_path / 'wd'
    options = six_iterations(tmp_path / 'cache', interval=1,
                             extra=['default_hooks.checkpoint.max_keep_ckpts=2'])
    train_here(wd, options, monkeypatch=monkeypatch)
    assert checkpoints(wd) == ['iter_5.pth', 'iter_6.pth']
    assert (wd / 'last_checkpoint').read_text().endswith('iter_6.pth')


def test_guard_arguments_are_checked():
    from lmd_toolkit.engine.hooks import NonFiniteGuardHook
    with pytest.raises(ValueError, match='max_bad_steps must be an int >= 1'):
        NonFiniteGuardHook(max_bad_steps=0)


@pytest.mark.parametrize('option, error, words', [
    ('train_dataloader.batch_size=0', 'ConfigValueError',
     'Config key train_dataloader.batch_size'),
    ('train_cfg.max_iters=-5', 'ConfigValueError',
     'Config key train_cfg.max_iters'),
    ('train_dataloader.dataset.allow_random_projector=False',
     'RandomProjectorError', 'model.projector.checkpoint'),
])
def test_train_refuses_bad_values_before_building_anything(
        option, error, words, tmp_path, monkeypatch):
    wd = tmp_path / 'wd'
    with pytest.raises(Exception) as e:
        train_here(wd, six_iterations(tmp_path / 'cache', extra=[option]),
                   monkeypatch=monkeypatch)
    assert type(e.value).__name__ == error and words in str(e.value)
    # refused before the work dir, the cache or a model existed
    assert not wd.exists() and not (tmp_path / 'cache').exists()


def test_resume_with_changes_needs_resume(tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match='--resume-with-changes needs '
                       '--resume'):
        train_here(tmp_path / 'wd', six_iterations(tmp_path / 'cache'),
                   ['--resume-with-changes'], monkeypatch)
