"""No code of a checkpoint runs on any loading path: config text that
would execute, and pickles that would run a command, each writing a marker
file if they ever ran."""
import os
import shutil

import pytest
import torch
from mmengine.config import Config
from reliability_helpers import load, six_iterations, train_here

from lmd_toolkit.apis.pipelines import recipe_changes
from lmd_toolkit.engine.hooks.resume_hook import ResumeConfigError
from lmd_toolkit.utils.config_text import UnsafeConfigText, parse_config_text
from lmd_toolkit.utils.fileio import UnreadableFileError, safe_torch_load


def code(marker) -> str:
    """Config text that creates ``marker`` when executed."""
    return (f"ran = __import__('os').system('touch {marker}')\n"
            "model = dict(type='LatentMaskingDiffusion')\n")


class RunsACommand:
    """A pickle payload: unpickling it runs ``touch marker``."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('trained')
    mp = pytest.MonkeyPatch()
    try:
        train_here(root / 'wd', six_iterations(root / 'cache'), monkeypatch=mp)
    finally:
        mp.undo()
    return root


def resumable_copy(trained, work_dir, edit):
    """``iter_3.pth`` of the trained run, edited, as a work dir's latest."""
    os.makedirs(work_dir)
    checkpoint = load(trained / 'wd' / 'iter_3.pth')
    edit(checkpoint)
    torch.save(checkpoint, work_dir / 'iter_3.pth')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_3.pth'))


def test_the_payloads_are_live(tmp_path):
    """The markers do appear on the paths that execute or unpickle."""
    marker = tmp_path / 'ran'
    Config.fromstring(code(marker), '.py')  # what mmengine's resume did
    assert marker.exists()
    marker.unlink()
    torch.save({'x': RunsACommand(marker)}, tmp_path / 'p.pth')
    torch.load(tmp_path / 'p.pth', weights_only=False)
    assert marker.exists()


def test_resume_ignores_executable_meta_config(trained, tmp_path,
                                                monkeypatch):
    marker, wd = tmp_path / 'ran', tmp_path / 'wd'
    resumable_copy(trained, wd,
                   lambda c: c['meta'].update(config=code(marker)))
    train_here(wd, six_iterations(trained / 'cache'), ['--resume'],
               monkeypatch)
    assert not marker.exists()
    assert (wd / 'iter_6.pth').exists()  # and the resume itself worked


def test_resume_compares_meta_cfg_as_data_only(trained, tmp_path,
                                               monkeypatch):
    marker, wd = tmp_path / 'ran', tmp_path / 'wd'

    def edit(checkpoint):
        checkpoint['meta']['cfg'] = code(marker)
        del checkpoint['resume_state']['config']  # as an mmengine file

    resumable_copy(trained, wd, edit)
    with pytest.raises(ResumeConfigError, match='is not plain data'):
        train_here(wd, six_iterations(trained / 'cache'), ['--resume'],
                   monkeypatch)
    assert not marker.exists()


def test_demo_reuse_check_never_runs_the_recorded_config(trained, tmp_path):
    marker = tmp_path / 'ran'
    checkpoint = load(trained / 'wd' / 'iter_3.pth')
    cfg = Config.fromstring(checkpoint['meta']['cfg'], '.py')
    assert recipe_changes(str(trained / 'wd' / 'iter_3.pth'), cfg) == []
    checkpoint['meta']['cfg'] = code(marker)
    torch.save(checkpoint, tmp_path / 'stage1.pth')
    with pytest.raises(UnsafeConfigText, match='line 1: Call'):
        recipe_changes(str(tmp_path / 'stage1.pth'), cfg)
    assert not marker.exists()


def test_config_text_accepts_only_literals():
    values = parse_config_text(
        "a = dict(b=[1, -2.5, (3, 'x')], c=None, d={'e': True})\n")
    assert values == dict(a=dict(b=[1, -2.5, (3, 'x')], c=None,
                                 d={'e': True}))
    for bad in ("a = open('f')", 'a = b', 'a = dict(**x)', "a = f'{x}'",
                'a = (lambda: 1)()', 'a.b = 1', 'del a'):
        with pytest.raises(UnsafeConfigText):
            parse_config_text(bad)


def _loaders():
    from mmengine.runner import checkpoint as mm

    from lmd_toolkit.models.projectors.checkpoint import read_checkpoint
    return {
        'mmengine _load_checkpoint': lambda p: mm._load_checkpoint(p),
        'mmengine load_checkpoint': lambda p: mm.load_checkpoint(
            torch.nn.Linear(1, 1), p),
        'mmengine CheckpointLoader': lambda p: mm.CheckpointLoader.
        load_checkpoint(p),
        'projector weights': lambda p: read_checkpoint(p),
        'safe_torch_load': lambda p: safe_torch_load(p),
    }


@pytest.mark.parametrize('loader', sorted(_loaders()))
def test_pickles_are_refused_even_when_the_environment_allows_them(
        loader, tmp_path, monkeypatch):
    from lmd_toolkit.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    marker = tmp_path / 'ran'
    torch.save({'state_dict': {}, 'meta': {'x': RunsACommand(marker)}},
               tmp_path / 'payload.pth')
    with pytest.raises((UnreadableFileError, Exception)) as e:
        _loaders()[loader](str(tmp_path / 'payload.pth'))
    assert 'weights_only' in str(e.value) or 'Unsupported' in str(e.value)
    assert not marker.exists()


def test_resume_refuses_a_pickle_payload(trained, tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    marker, wd = tmp_path / 'ran', tmp_path / 'wd'
    resumable_copy(trained, wd,
                   lambda c: c['meta'].update(x=RunsACommand(marker)))
    with pytest.raises(UnreadableFileError, match='safe loader'):
        train_here(wd, six_iterations(trained / 'cache'), ['--resume'],
                   monkeypatch)
    assert not marker.exists()
    shutil.rmtree(wd)


def test_a_checkpoint_without_resume_state_resumes_with_a_warning(
        trained, tmp_path, monkeypatch):
    """A checkpoint of an older version (mmengine's meta['cfg'] only): the
    text, parsed as data, equals the live config; the missing random states
    are named."""
    from lmd_toolkit.engine.hooks import resume_hook
    said = []
    monkeypatch.setattr(resume_hook, 'print_log',
                        lambda msg, **kw: said.append(msg))
    wd = tmp_path / 'wd'
    resumable_copy(trained, wd, lambda c: c.pop('resume_state'))
    train_here(wd, six_iterations(trained / 'cache'), ['--resume'],
               monkeypatch)
    assert (wd / 'iter_6.pth').exists()
    assert not [m for m in said if 'config changes' in m]
    assert any('holds no random states for 1 rank(s)' in m for m in said)
