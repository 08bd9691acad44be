"""tools/train.py and tools/test.py end to end on the real LMD model and the
embedded photos (tiny sizes)."""
import json
import os.path as osp

import pytest
import torch

from lmd_toolkit.engine.mask_schedulers import CosineMaskRatio
from lmd_toolkit.utils.compat import apply_compat_shims

from tool_helpers import (TINY_CONFIG, run_dist_script, run_tool, scalars,
                          train_scalars)


@pytest.fixture(scope='module')
def unbroken_run(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('unbroken'))
    run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', work_dir])
    return work_dir


def test_training_logs_ratio_and_saves(unbroken_run):
    records = train_scalars(unbroken_run)
    assert [r['step'] for r in records] == list(range(1, 9))
    expected = [CosineMaskRatio().ratio(t, 8) for t in range(8)]
    assert [r['mask_ratio'] for r in records] == pytest.approx(expected)
    for it in (4, 8):
        assert osp.isfile(osp.join(unbroken_run, f'iter_{it}.pth'))
    grid = osp.join(unbroken_run, 'reconstructions', 'iter_8.png')
    assert osp.isfile(grid)


def test_resume_continues_the_mask_ratio_curve(unbroken_run, tmp_path):
    # Stop at N = 4 (the iteration-4 checkpoint of the 2N run) and resume.
    resumed = str(tmp_path / 'resumed')
    run_tool([
        'tools/train.py', TINY_CONFIG, '--work-dir', resumed, '--resume',
        osp.join(unbroken_run, 'iter_4.pth')
    ])
    before = {r['step']: r for r in train_scalars(unbroken_run)}
    after = train_scalars(resumed)
    assert [r['step'] for r in after] == [5, 6, 7, 8]
    for r in after:
        assert r['mask_ratio'] == pytest.approx(before[r['step']]['mask_ratio'])
        assert r['lr'] == pytest.approx(before[r['step']]['lr'])
    assert after[0]['mask_ratio'] > 0.15 + 1e-3  # no restart at min_ratio
    apply_compat_shims()  # our checkpoints load with weights_only=True
    ckpt = torch.load(osp.join(resumed, 'iter_8.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 8


def test_resume_auto_finds_latest_checkpoint(unbroken_run, tmp_path):
    import shutil
    work_dir = tmp_path / 'auto'
    shutil.copytree(unbroken_run, work_dir)
    proc = run_tool([
        'tools/train.py', TINY_CONFIG, '--work-dir',
        str(work_dir), '--resume', '--resume-with-changes', '--cfg-options',
        'train_cfg.max_iters=10'
    ])
    log = proc.stdout + proc.stderr
    assert 'resumed' in log.lower()
    # a longer run changes the schedules: allowed on purpose, and listed
    assert 'train_cfg.max_iters: 8 -> 10' in log
    steps = [r['step'] for r in train_scalars(str(work_dir))]
    assert steps == [9, 10]


def test_test_tool_writes_metrics(unbroken_run, tmp_path):
    out_dir = str(tmp_path / 'test')
    run_tool([
        'tools/test.py', TINY_CONFIG,
        osp.join(unbroken_run, 'iter_8.pth'), '--work-dir', out_dir
    ])
    with open(osp.join(out_dir, 'test_results.json')) as f:
        results = json.load(f)
    # The same checkpoint, data and seeded masks as the run's validation.
    val = [r for r in scalars(unbroken_run) if 'PSNR' in r][-1]
    assert results['metrics']['PSNR'] == pytest.approx(val['PSNR'], abs=1e-3)
    assert results['metrics']['SSIM'] == pytest.approx(val['SSIM'], abs=1e-4)


def test_amp_trains_in_bfloat16_on_cpu(tmp_path):
    proc = run_tool([
        'tools/train.py', TINY_CONFIG, '--work-dir',
        str(tmp_path), '--amp', '--cfg-options', 'train_cfg.max_iters=2',
        'default_hooks.visualization.interval=100'
    ])
    assert 'AutocastOptimWrapper' in proc.stdout + proc.stderr
    records = train_scalars(str(tmp_path))
    assert len(records) == 2
    assert all(r['loss'] == r['loss'] for r in records)  # not NaN


def test_missing_config_is_a_clear_error(tmp_path):
    import subprocess
    import sys
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', 'configs/nope.py'],
        cwd=osp.dirname(osp.dirname(TINY_CONFIG)) + '/..',
        capture_output=True,
        text=True)
    assert proc.returncode != 0
    assert 'Config file not found: configs/nope.py' in proc.stderr


def test_dist_train_two_cpu_processes(tmp_path):
    import os
    work_dir = str(tmp_path / 'dist')
    proc = run_dist_script(
        ['tools/dist_train.sh', TINY_CONFIG, '2', '--work-dir', work_dir])
    out = proc.stdout + proc.stderr
    # torchrun exits 0 only when every worker does; DDP's all-reduce needs
    # both ranks at every step.
    assert proc.returncode == 0, out[-5000:]
    assert 'gloo process group on CPU (rank 0 of 2)' in out
    assert 'GPU number: 2' in out  # mmengine's world size line
    assert sorted(p for p in os.listdir(work_dir) if p.endswith('.pth')) == [
        'iter_4.pth', 'iter_8.pth'
    ]
    assert [r['step'] for r in train_scalars(work_dir)] == list(range(1, 9))


def test_dist_test_matches_single_process(unbroken_run, tmp_path):
    ckpt = osp.join(unbroken_run, 'iter_8.pth')
    single, dist = str(tmp_path / 'single'), str(tmp_path / 'dist')
    run_tool(['tools/test.py', TINY_CONFIG, ckpt, '--work-dir', single])
    proc = run_dist_script(
        ['tools/dist_test.sh', TINY_CONFIG, ckpt, '2', '--work-dir', dist])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    results = [
        json.load(open(osp.join(d, 'test_results.json')))['metrics']
        for d in (single, dist)
    ]
    # Each rank scores half of the crops; the metrics gather them all.
    assert results[1]['PSNR'] == pytest.approx(results[0]['PSNR'], abs=1e-4)
    assert results[1]['SSIM'] == pytest.approx(results[0]['SSIM'], abs=1e-5)


def test_print_config_merges_bases_and_overrides():
    proc = run_tool([
        'tools/misc/print_config.py', 'configs/lmd_vit-b_in1k_ps.py',
        '--cfg-options', 'train_dataloader.batch_size=7'
    ])
    out = proc.stdout
    assert "type='PiecewiseMaskRatio'" in out  # leaf override of the cs base
    assert "type='Adan'" in out  # schedule base (lmd_toolkit's foreach Adan)
    assert 'batch_size=7' in out
    assert "default_scope = 'lmd_toolkit'" in out
