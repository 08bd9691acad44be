"""tools/analysis_tools/plot_curves.py on hand-written run files."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from PIL import Image

from tool_helpers import ROOT, run_tool

TOOL = osp.join('tools', 'analysis_tools', 'plot_curves.py')


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'plot_curves', osp.join(ROOT, TOOL))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_efficiency(work_dir, losses, times, ratios):
    os.makedirs(work_dir)
    wall, total = [], 0.0
    for t in times:
        total += t
        wall.append(total)
    records = dict(
        iter=list(range(1, len(losses) + 1)),
        time=times,
        data_time=[0.01] * len(times),
        loss=losses,
        mask_ratio=ratios,
        wall=wall)
    with open(osp.join(work_dir, 'efficiency.json'), 'w') as f:
        json.dump(dict(records=records), f)


def test_cli_plots_two_runs(tmp_path):
    n = 30
    write_efficiency(str(tmp_path / 'lmd'), [3 - 0.05 * i for i in range(n)],
                     [0.5] * n, [0.15 + 0.02 * i for i in range(n)])
    write_efficiency(str(tmp_path / 'mae'), [3 - 0.03 * i for i in range(n)],
                     [0.4] * n, [0.75] * n)
    out = tmp_path / 'figs' / 'curves.png'
    proc = run_tool([
        TOOL, str(tmp_path / 'lmd'), str(tmp_path / 'mae'), '--labels',
        'LMD', 'MAE', '--out', str(out), '--window', '5'
    ])
    assert str(out) in proc.stdout
    assert 'LMD: 30 records' in proc.stdout
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == 'PNG'
        assert image.size == (1100, 720)  # 11 x 7.2 inches at 100 dpi


def test_missing_dir_names_it(tmp_path):
    missing = tmp_path / 'no_such_run'
    proc = subprocess.run(
        [sys.executable, TOOL, str(missing), '--out', str(tmp_path / 'x.png')],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert f'error: {missing} is not a directory' in proc.stderr
    assert not (tmp_path / 'x.png').exists()


def test_dir_without_logs_names_both_files(tmp_path):
    tool = load_tool()
    with pytest.raises(FileNotFoundError) as err:
        tool.load_run(str(tmp_path))
    message = str(err.value)
    assert message.startswith(f'{tmp_path} has neither efficiency.json')
    assert 'vis_data/scalars.json' in message


def test_scalars_json_fallback(tmp_path):
    tool = load_tool()
    # Two runs of mmengine; the newer timestamp wins. Train lines have
    # `loss`, the validation line does not.
    old = tmp_path / '20240101_000000' / 'vis_data'
    new = tmp_path / '20240102_000000' / 'vis_data'
    old.mkdir(parents=True)
    new.mkdir(parents=True)
    (old / 'scalars.json').write_text(
        json.dumps(dict(iter=10, loss=9.0, time=1.0)) + '\n')
    lines = [
        dict(iter=10, step=10, loss=2.0, time=0.5, mask_ratio=0.2, lr=0.1),
        dict(iter=20, step=20, loss=1.5, time=0.25, mask_ratio=0.3, lr=0.1),
        dict(step=20, PSNR=20.0),
        dict(iter=25, step=25, loss=1.0, time=0.2, mask_ratio=0.4, lr=0.1),
    ]
    (new / 'scalars.json').write_text(
        ''.join(json.dumps(line) + '\n' for line in lines))
    run = tool.load_run(str(tmp_path))
    assert run['source'].endswith(
        osp.join('20240102_000000', 'vis_data', 'scalars.json'))
    assert run['iter'] == [10, 20, 25]
    assert run['loss'] == [2.0, 1.5, 1.0]
    assert run['mask_ratio'] == [0.2, 0.3, 0.4]
    # seconds: 10 x 0.5, + 10 x 0.25, + 5 x 0.2
    assert run['wall'] == pytest.approx([5.0, 7.5, 8.5])
    out = tool.plot_runs([run], ['fallback'], str(tmp_path / 'c.png'),
                         window=20, keys=['loss', 'mask_ratio', 'lr'])
    with Image.open(out) as image:
        assert image.size == (1100, 1080)  # three rows of 3.6 inches


def test_smoothing_of_efficiency_runs(tmp_path):
    tool = load_tool()
    write_efficiency(str(tmp_path / 'r'), [4, 3, 2, 1.5], [1, 2, 1, 2],
                     [0.5, None, 0.5, 0.5])
    run = tool.load_run(str(tmp_path / 'r'))
    iters, seconds, values = tool._series(run, 'loss', 2)
    assert (iters, seconds, values) == ([2, 3, 4], [3, 4, 6],
                                        [3.5, 2.5, 1.75])
    iters, _, values = tool._series(run, 'mask_ratio', 2)  # not smoothed
    assert (iters, values) == ([1, 3, 4], [0.5, 0.5, 0.5])
