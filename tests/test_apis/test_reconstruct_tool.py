"""tools/reconstruct.py, run in-process on a tiny random-weight model."""
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(ROOT, 'tests', 'data', 'tiny_lmd_photos.py')
sys.path.insert(0, osp.join(ROOT, 'tools'))
import reconstruct as tool  # noqa: E402


@pytest.fixture(scope='module')
def checkpoint(pixel_model, tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    torch.save(dict(state_dict=pixel_model.state_dict()), path)
    return str(path)


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / 'in'
    (folder / 'sub').mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ('a.png', 'sub/b.jpg'):
        pixels = rng.integers(0, 256, (80, 72, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)
    (folder / 'notes.txt').write_text('not an image')
    return str(folder)


def run(monkeypatch, *args):
    monkeypatch.setattr(sys, 'argv', ['reconstruct.py', TINY_CONFIG, *args])
    tool.main()


def test_writes_outputs_and_refuses_to_overwrite(monkeypatch, checkpoint,
                                                 inputs, tmp_path):
    out = str(tmp_path / 'out')
    run(monkeypatch, checkpoint, inputs, '--out', out, '--mask-ratio', '0.5',
        '--batch-size', '1')
    assert sorted(os.listdir(out)) == ['0000_a.png', '0001_b.png', 'grid.png']
    side = Image.open(osp.join(out, '0000_a.png'))
    assert side.size == (3 * 64 + 4 * 2, 64 + 2 * 2)  # 3 panels, padding 2
    grid = Image.open(osp.join(out, 'grid.png'))
    assert grid.size == (3 * 64 + 4 * 2, 2 * 64 + 3 * 2)
    before = osp.getmtime(osp.join(out, 'grid.png'))
    with pytest.raises(SystemExit, match='already exist.*--force'):
        run(monkeypatch, checkpoint, inputs, '--out', out)
    assert osp.getmtime(osp.join(out, 'grid.png')) == before
    run(monkeypatch, checkpoint, inputs, '--out', out, '--force')


def test_inpaint_and_sample_modes(monkeypatch, checkpoint, inputs, tmp_path):
    mask = np.zeros((64, 64), np.uint8)
    mask[:16, :16] = 255
    mask_path = str(tmp_path / 'mask.png')
    Image.fromarray(mask).save(mask_path)
    out = str(tmp_path / 'inpaint')
    run(monkeypatch, checkpoint, osp.join(inputs, 'a.png'), '--out', out,
        '--inpaint', mask_path)
    row = np.asarray(Image.open(osp.join(out, '0000_a.png')))
    inp, result = row[2:66, 2:66], row[2:66, 134:198]
    assert np.array_equal(inp[16:], result[16:])  # outside the region
    out = str(tmp_path / 'sample')
    run(monkeypatch, checkpoint, '--out', out, '--sample', '--steps', '3',
        '--num-samples', '2', '--scheduler', 'UniformMaskRatio')
    assert sorted(
        os.listdir(out)) == ['0000_sample.png', '0001_sample.png', 'grid.png']
    # start | 3 steps | final
    assert Image.open(osp.join(out, 'grid.png')).size[0] == 5 * 66 + 2


def test_bad_arguments(monkeypatch, checkpoint, tmp_path):
    with pytest.raises(SystemExit, match='input not found'):
        run(monkeypatch, checkpoint, str(tmp_path / 'missing.png'), '--out',
            str(tmp_path / 'o'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SystemExit, match='no images'):
        run(monkeypatch, checkpoint, str(tmp_path / 'empty'), '--out',
            str(tmp_path / 'o'))
    with pytest.raises(SystemExit, match='unknown mask scheduler'):
        run(monkeypatch, checkpoint, '--out', str(tmp_path / 'o'), '--sample',
            '--scheduler', 'Nope')
