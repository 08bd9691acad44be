"""tools/reproduce.py: the tables from hand-made results, and a real run of
every row at a budget of a few iterations."""
import csv
import importlib.util
import json
import os.path as osp

import pytest
from tool_helpers import ROOT, run_tool


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'reproduce', osp.join(ROOT, 'tools', 'reproduce.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metrics(mit, mlt, mli, loss=1.0, psnr=20.0):
    return {'MIT': mit, 'MLT': mlt, 'MLI': mli, 'final_loss': loss,
            'PSNR@0.75': psnr, 'cache_s': None}


def test_tables_from_known_results():
    tool = load_tool()
    labels = {k: v[0] for k, v in tool.SUITES['photos']['rows'].items()}
    results = dict(cs=metrics(0.5, 10.0, 20.0), ps=metrics(0.4, 8.0, 20.0),
                   us=metrics(0.6, 12.0, 20.0), mae=metrics(1.0, 20.0, 20.0),
                   pixel=metrics(1.0, 5.0, 5.0), fixed={'error': 'boom'})
    tables = tool.build_tables(results, labels)
    t1 = {row[0]: row for row in tables['table1'][1:]}
    assert tables['table1'][0][:3] == ['method', 'mask ratio', 'MIT']
    # mean of CS / PS / US: MIT 0.5, MLT 10, MLI 20; MLT vs MAE: -50 %
    assert t1['LMD mean (CS, PS, US)'][2:5] == ['0.5', '10', '20']
    assert t1['LMD mean (CS, PS, US)'][-1] == '-50.0'
    assert t1['LMD-PS'][-1] == '-60.0'  # (8 - 20) / 20
    assert t1['MAE'][1] == 'fixed 0.75' and t1['MAE'][-1] == '+0.0'
    t5 = {row[1]: row for row in tables['table5'][1:]}
    assert list(t5) == ['LMD (CS)', 'w/o LSP', 'w/o MAE', 'w/o MDS']
    # overall = mean(MIT, MLT, MLI): LMD (0.5 + 10 + 20) / 3 = 10.17,
    # w/o LSP (1 + 5 + 5) / 3 = 3.667, delta 3.667 - 10.167 = -6.5
    assert t5['LMD (CS)'][2:4] == ['10.17', '-']
    assert t5['w/o LSP'][2:4] == ['3.667', '-6.5']
    assert t5['w/o MAE'][2] == 'not run'
    assert t5['w/o MDS'][2] == 'failed: boom'


def test_reproduce_every_row_at_a_tiny_budget(tmp_path):
    work_dir = tmp_path / 'rep'
    cache = tmp_path / 'cache'
    run_tool(['tools/reproduce.py', '--iters', '3', '--stage1-iters', '2',
              '--work-dir', str(work_dir), '--num-crops', '24',
              '--cache-dir', str(cache), '--fail-fast'], timeout=900)
    results = json.loads((work_dir / 'results.json').read_text())['rows']
    assert sorted(results) == sorted(
        ['cs', 'ps', 'us', 'fixed', 'pixel', 'unet', 'mae'])
    for key, row in results.items():
        assert row['MIT'] > 0, key
        # every LMD row validates at ratio 0.75; MAE has no predict mode
        assert (row['PSNR@0.75'] is None) == (key == 'mae'), key
        # the latent rows train from a cache; pixel rows never cache
        latent = key in ('cs', 'ps', 'us', 'fixed', 'unet')
        assert (row['cache_s'] is not None) == latent, key
    # one cache of 24 crops x 4 views, built by the first latent row and
    # shared by the other four
    folders = list(cache.iterdir())
    assert len(folders) == 1
    manifest = json.loads((folders[0] / 'manifest.json').read_text())
    assert manifest['num_rows'] == 96 and manifest['state'] == 'complete'
    for key in ('ps', 'us', 'fixed', 'unet'):
        record = json.loads((work_dir / key / 'latent_cache.json').read_text())
        assert record['caches'][0]['cache_dir'] == str(folders[0])
    for name, col, labels in [
            ('table1', 0, ['LMD-CS', 'LMD-PS', 'LMD-US',
                           'LMD mean (CS, PS, US)', 'MAE']),
            ('table5', 1, ['LMD (CS)', 'w/o LSP', 'w/o MAE', 'w/o MDS'])]:
        with open(work_dir / f'{name}.csv') as f:
            rows = list(csv.reader(f))
        assert [r[col] for r in rows[1:]] == labels
        assert all(len(r) == len(rows[0]) for r in rows)
        md = (work_dir / f'{name}.md').read_text()
        assert all(f' {label} |' in md for label in labels)
        assert 'failed' not in md and 'not run' not in md
    assert (work_dir / 'curves.png').stat().st_size > 10000
    # the stage-1 projector was trained once and used by the latent rows
    assert (work_dir / 'stage1' / 'iter_2.pth').is_file()


@pytest.mark.parametrize('argv, message', [
    (['--rows', 'nope'], "invalid choice: 'nope'"),
    (['--suite', 'coco'], "invalid choice: 'coco'"),
])
def test_bad_arguments(argv, message, capsys):
    tool = load_tool()
    with pytest.raises(SystemExit):
        tool.parse_args(argv)
    assert message in capsys.readouterr().err
