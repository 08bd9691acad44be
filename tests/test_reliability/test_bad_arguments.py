"""Bad config values and tool arguments fail first: one named error before
any model, dataset or work dir is built (docs/en/reliability.md)."""
import glob
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from lmd_toolkit.utils.validate import ConfigValueError, check_config
from reliability_helpers import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(ROOT, 'tests', 'data', 'tiny_lmd_photos.py')
IN1K_FINETUNE = osp.join(ROOT, 'configs', 'downstream',
                         'latent_vit-b_kl-f8_finetune_in1k.py')


def tiny(**options):
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.merge_from_dict(options)
    return cfg


@pytest.mark.parametrize('mode,key,value', [
    ('test', 'test_dataloader.batch_size', 0),
    ('train', 'train_dataloader.batch_size', -4),
    ('train', 'val_dataloader.batch_size', 0),
    ('train', 'train_dataloader.num_workers', -1),
    ('train', 'train_cfg.max_iters', 0),
    ('train', 'train_cfg.val_interval', 0),
    ('train', 'train_cfg.max_iters', 2.5),
])
def test_check_config_names_key_value_and_expectation(mode, key, value):
    with pytest.raises(ConfigValueError) as err:
        check_config(tiny(**{key: value}), mode)
    assert err.value.key == key and err.value.got == value
    message = str(err.value)
    assert message.startswith(f'Config key {key} ')
    assert f'got {value!r}' in message and 'expected a' in message


def test_check_config_modes_check_their_own_loaders():
    # a test run does not care about the training loader, and vice versa
    check_config(tiny(**{'train_dataloader.batch_size': 0}), 'test')
    check_config(tiny(**{'test_dataloader.batch_size': 0}), 'train')
    with pytest.raises(ValueError, match="mode must be 'train' or 'test'"):
        check_config(tiny(), 'val')


def test_check_config_lists_every_problem():
    cfg = tiny(**{'train_cfg.max_iters': 0, 'train_dataloader.num_workers':
                  -2})
    with pytest.raises(ConfigValueError) as err:
        check_config(cfg, 'train')
    assert 'train_dataloader.num_workers' in str(err.value)
    assert 'also: Config key train_cfg.max_iters' in str(err.value)


def test_crop_larger_than_resize_is_refused():
    cfg = Config.fromfile(IN1K_FINETUNE)
    check_config(cfg, 'test')  # ResizeEdge(short=256) -> CenterCrop(224)
    cfg.test_dataloader.dataset.pipeline[2].crop_size = 300
    with pytest.raises(ConfigValueError) as err:
        check_config(cfg, 'test')
    message = str(err.value)
    key = 'test_dataloader.dataset.pipeline'
    assert err.value.key == f'{key}[2].crop_size' and err.value.got == 300
    assert 'mmpretrain.CenterCrop' in message
    assert 'mmpretrain.ResizeEdge' in message and f'{key}[1]' in message
    assert 'scale=256' in message and "edge='short'" in message
    assert 'the crop needs 300 px' in message


@pytest.mark.parametrize('resize,crop,refused', [
    (dict(type='Resize', scale=(96, 64)), (64, 64), False),
    (dict(type='Resize', scale=(96, 64)), (64, 80), True),
    (dict(type='Resize', scale=(96, 64), keep_ratio=True), (90, 60), False),
    (dict(type='Resize', scale=(96, 64), keep_ratio=True), (70, 70), True),
    (dict(type='mmpretrain.ResizeEdge', scale=64, edge='long'), 64, False),
    (dict(type='mmpretrain.ResizeEdge', scale=64, edge='long'), (65, 32),
     True),
    (dict(type='mmpretrain.ResizeEdge', scale=64), (200, 64), False),
])
def test_crop_after_resize_static_sizes(resize, crop, refused):
    pipeline = [resize, dict(type='mmpretrain.CenterCrop', crop_size=crop),
                dict(type='mmpretrain.PackInputs')]
    cfg = tiny(**{'test_dataloader.dataset.pipeline': pipeline})
    if not refused:
        check_config(cfg, 'test')
        return
    with pytest.raises(ConfigValueError,
                       match=r'pipeline\[1\]\.crop_size.*preceding'):
        check_config(cfg, 'test')


def test_repository_configs_pass():
    """No false alarm on any shipped config."""
    paths = sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                             recursive=True))
    paths = [p for p in paths if '_base_' not in p]
    assert len(paths) > 10
    for path in paths:
        cfg = Config.fromfile(path)
        check_config(cfg, 'train')
        check_config(cfg, 'test')


def test_tools_test_checks_the_config_first(monkeypatch, tmp_path):
    """batch_size 0: refused before the checkpoint is read (it does not even
    exist) and before the model (which could not be built) or the work dir
    exist."""
    tool = load_tool('tools/test.py', 'lmd_tools_test_args')
    work_dir = tmp_path / 'work'
    monkeypatch.setattr(sys, 'argv', [
        'test.py', TINY_CONFIG, str(tmp_path / 'missing.pth'), '--work-dir',
        str(work_dir), '--cfg-options', 'test_dataloader.batch_size=0',
        'model.backbone.type=NoSuchBackbone'
    ])
    with pytest.raises(ConfigValueError,
                       match=r'test_dataloader\.batch_size.*got 0'):
        tool.main()
    assert not work_dir.exists()


@pytest.mark.parametrize('tool,args,option', [
    ('tools/reconstruct.py', ['in.png', '--out', 'OUT', '--batch-size', '0'],
     '--batch-size'),
    ('tools/reconstruct.py', ['--sample', '--out', 'OUT', '--num-samples',
                              '-1'], '--num-samples'),
    ('tools/reconstruct.py', ['--sample', '--out', 'OUT', '--steps', '0'],
     '--steps'),
    ('tools/analysis_tools/eval_reconstruction.py', ['--batch-size', '0'],
     '--batch-size'),
    ('tools/analysis_tools/eval_reconstruction.py',
     ['--mask-ratios', '0.5', '1.0'], '--mask-ratios'),
    ('tools/analysis_tools/eval_projector.py', ['--batch-size', '-3'],
     '--batch-size'),
    ('tools/analysis_tools/eval_projector.py', ['--num-images', '0'],
     '--num-images'),
])
def test_tool_counts_refused_by_the_parser(monkeypatch, capsys, tmp_path,
                                           tool, args, option):
    """The config and checkpoint do not exist: the parser's refusal comes
    before either is opened, and no output folder is made."""
    module = load_tool(tool, 'lmd_args_' + osp.basename(tool)[:-3])
    out = tmp_path / 'out'
    argv = [str(tmp_path / 'no_config.py'), str(tmp_path / 'no_ckpt.pth')]
    argv += [str(out) if a == 'OUT' else a for a in args]
    monkeypatch.setattr(sys, 'argv', [tool, *argv])
    with pytest.raises(SystemExit) as err:
        module.main()
    assert err.value.code == 2  # argparse's usage error
    message = capsys.readouterr().err
    assert f'argument {option}' in message
    assert 'expected a positive integer' in message or '[0, 1)' in message
    assert not out.exists()
