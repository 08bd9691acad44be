"""A third-party package registers a mask scheduler and drives a real
training run through tools/train.py (docs/en/plugins.md)."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest

from tool_helpers import ROOT, TINY_CONFIG, run_tool, train_scalars

PLUGIN = textwrap.dedent('''
    from lmd_toolkit.engine.mask_schedulers import BaseMaskRatio
    from lmd_toolkit.registry import MASK_SCHEDULERS


    @MASK_SCHEDULERS.register_module()
    class ZigZagMaskRatio(BaseMaskRatio):
        """Alternates between min_ratio and max_ratio every `period` iters.

        Args:
            min_ratio (float): Low ratio. Defaults to 0.2.
            max_ratio (float): High ratio. Defaults to 0.6.
            period (int): Iterations per level. Defaults to 2.
        """

        def __init__(self, min_ratio=0.2, max_ratio=0.6, period=2):
            super().__init__(min_ratio=min_ratio, max_ratio=max_ratio)
            self.period = period

        def get_ratio(self, cur_iter, max_iters):
            high = (cur_iter // self.period) % 2
            return self.max_ratio if high else self.min_ratio
''')


@pytest.fixture
def plugin_dir(tmp_path):
    pkg = tmp_path / 'site' / 'zigzag_lmd_plugin'
    pkg.mkdir(parents=True)
    (pkg / '__init__.py').write_text(PLUGIN)
    return str(tmp_path / 'site')


def test_plugin_scheduler_drives_training(plugin_dir, tmp_path):
    config = tmp_path / 'zigzag_config.py'
    config.write_text(
        f'_base_ = [{TINY_CONFIG!r}]\n'
        "custom_imports = dict(imports=['zigzag_lmd_plugin'], "
        'allow_failed_imports=False)\n'
        'default_hooks = dict(mask_ratio=dict(scheduler=dict('
        "_delete_=True, type='ZigZagMaskRatio', period=3)))\n")
    work_dir = str(tmp_path / 'work')
    run_tool(['tools/train.py', str(config), '--work-dir', work_dir],
             env=dict(PYTHONPATH=plugin_dir))
    ratios = [r['mask_ratio'] for r in train_scalars(work_dir)]
    assert ratios == pytest.approx([0.2, 0.2, 0.2, 0.6, 0.6, 0.6, 0.2, 0.2])


def test_plugin_through_cfg_options(plugin_dir, tmp_path):
    work_dir = str(tmp_path / 'work')
    run_tool([
        'tools/train.py', TINY_CONFIG, '--work-dir', work_dir,
        '--cfg-options', 'custom_imports.imports=[zigzag_lmd_plugin]',
        'default_hooks.mask_ratio.scheduler.type=ZigZagMaskRatio',
        'default_hooks.mask_ratio.scheduler.min_ratio=0.2',
        'default_hooks.mask_ratio.scheduler.max_ratio=0.6',
        'train_cfg.max_iters=4'
    ],
             env=dict(PYTHONPATH=plugin_dir))
    ratios = [r['mask_ratio'] for r in train_scalars(work_dir)]
    assert ratios == pytest.approx([0.2, 0.2, 0.6, 0.6])


def test_plot_includes_plugin(plugin_dir, tmp_path):
    out = str(tmp_path / 'schedules.png')
    proc = run_tool([
        'tools/analysis_tools/plot_mask_schedule.py', '--out', out,
        '--max-iters', '30', '--cfg-options',
        'custom_imports.imports=[zigzag_lmd_plugin]'
    ],
                    env=dict(PYTHONPATH=plugin_dir))
    assert 'ZigZagMaskRatio' in proc.stdout
    assert 'CosineMaskRatio' in proc.stdout
    from PIL import Image
    with Image.open(out) as img:
        assert img.format == 'PNG' and img.size[0] > 300


def test_unknown_scheduler_fails_with_the_registered_list(tmp_path):
    proc = subprocess.run([
        sys.executable, 'tools/train.py', TINY_CONFIG, '--work-dir',
        str(tmp_path), '--cfg-options',
        'default_hooks.mask_ratio.scheduler.type=CosineMaskRatioo'
    ],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode != 0
    assert "Unknown mask scheduler type='CosineMaskRatioo'" in proc.stderr
    assert "'CosineMaskRatio', 'FixedMaskRatio'" in proc.stderr
    assert not osp.exists(osp.join(str(tmp_path), 'iter_1.pth'))
