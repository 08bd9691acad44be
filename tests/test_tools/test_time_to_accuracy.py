"""tools/analysis_tools/time_to_accuracy.py: time to target on synthetic
curves, the labelled image-folder layouts, and a run of a few seconds."""
import importlib.util
import json
import math
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from tool_helpers import ROOT, run_tool


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'time_to_accuracy',
        osp.join(ROOT, 'tools', 'analysis_tools', 'time_to_accuracy.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def write_classes(folder, per_class=6, size=24):
    """Three classes of grey images (left half, top half, centre bright)."""
    rng = np.random.default_rng(0)
    paths = []
    for c in range(3):
        (folder / f'class_{c}').mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = np.full((size, size, 3), 30.0)
            if c == 0:
                img[:, :size // 2] = 220
            elif c == 1:
                img[:size // 2] = 220
            else:
                img[size // 4:3 * size // 4, size // 4:3 * size // 4] = 220
            img = np.clip(img + rng.normal(0, 15, img.shape), 0, 255)
            path = folder / f'class_{c}' / f'{i}.png'
            Image.fromarray(img.astype(np.uint8)).save(path)
            paths.append((f'class_{c}/{i}.png', c))
    return paths


def test_time_to_target_interpolates_between_evaluations():
    seconds, acc = [0, 10, 20, 30], [0.5, 0.6, 0.8, 0.7]
    # first crossing of 0.7 between 10 s (0.6) and 20 s (0.8): 15 s
    assert tool.time_to_target(seconds, acc, 0.7) == pytest.approx(15.0)
    assert tool.time_to_target(seconds, acc, 0.8) == pytest.approx(20.0)
    assert tool.time_to_target(seconds, acc, 0.5) == 0.0  # random init
    assert tool.time_to_target(seconds, acc, 0.81) is None  # never
    with pytest.raises(ValueError):
        tool.time_to_target([0, 1], [0.5], 0.5)


def test_speedup_ratio_and_bounds():
    r = tool.speedup(120.0, 40.0, 240.0, 240.0)
    assert r['ratio'] == pytest.approx(3.0) and r['bound'] is None
    assert r['text'] == '3.00x'
    # LMD never reached it in its 200 s: ratio < 120 / 200
    r = tool.speedup(120.0, None, 240.0, 200.0)
    assert r['bound'] == '<' and r['ratio'] == pytest.approx(0.6)
    # MAE never reached a --target that LMD reached at 60 s: > 240 / 60
    r = tool.speedup(None, 60.0, 240.0, 240.0)
    assert r['bound'] == '>' and r['ratio'] == pytest.approx(4.0)
    assert math.isinf(tool.speedup(50.0, 0.0, 240.0, 240.0)['ratio'])
    assert tool.speedup(None, None, 240.0, 240.0)['ratio'] is None
    assert tool.speedup(0.0, 0.0, 240.0, 240.0)['ratio'] is None


def test_stratified_split():
    labels = [0] * 10 + [1] * 5 + [2] * 2
    train, val = tool.stratified_split(labels, 0.2, seed=0)
    assert sorted(train + val) == list(range(17))
    assert not set(train) & set(val)
    # 0.2 of 10, 5 and 2 (at least one each): 2 + 1 + 1 held out
    assert sorted(np.asarray(labels)[val].tolist()) == [0, 0, 1, 2]
    assert tool.stratified_split(labels, 0.2, seed=0) == (train, val)


def test_image_folder_layouts(tmp_path):
    # class subfolders only: a seeded stratified split
    entries = write_classes(tmp_path / 'flat')
    data = tool.image_datasets(str(tmp_path / 'flat'), 32)
    assert data['to_rgb'] and data['layout'].startswith('class subfolders')
    images, labels = tool.load_images(data['train'])
    val_images, val_labels = tool.load_images(data['val'])
    assert images.shape == (15, 3, 32, 32)
    assert str(images.dtype) == 'torch.uint8'
    assert val_images.shape == (3, 3, 32, 32)
    assert sorted(val_labels.tolist()) == [0, 1, 2]
    assert sorted(labels.tolist()) == sorted([0, 1, 2] * 5)
    # meta/train.txt + meta/val.txt (mmpretrain's annotation files)
    root = tmp_path / 'meta_layout'
    write_classes(root / 'train')
    write_classes(root / 'val')
    (root / 'meta').mkdir()
    (root / 'meta' / 'train.txt').write_text(
        ''.join(f'{p} {c}\n' for p, c in entries[:-3]))
    (root / 'meta' / 'val.txt').write_text(
        ''.join(f'{p} {c}\n' for p, c in entries[-3:]))
    data = tool.image_datasets(str(root), 32)
    assert data['layout'].startswith('meta/')
    assert tool.load_images(data['train'])[0].shape[0] == 15
    assert tool.load_images(data['val'])[1].tolist() == [2, 2, 2]
    # train/ + val/ of class subfolders
    root = tmp_path / 'split_layout'
    write_classes(root / 'train', per_class=2)
    write_classes(root / 'val', per_class=1)
    data = tool.image_datasets(str(root), 32)
    assert data['layout'].startswith('train/')
    assert tool.load_images(data['val'])[1].tolist() == [0, 1, 2]
    with pytest.raises(FileNotFoundError):
        tool.image_datasets(str(tmp_path / 'missing'), 32)


def test_a_run_of_a_few_seconds(tmp_path):
    write_classes(tmp_path / 'images', per_class=8)
    work_dir = tmp_path / 'out'
    run_tool([
        'tools/analysis_tools/time_to_accuracy.py', '--data',
        str(tmp_path / 'images'), '--budget', '3', '--probe-interval', '1',
        '--projector-checkpoint', 'random', '--init-seeds', '2',
        '--probe-splits', '2', '--knn-k', '3', '--calib-iters', '2',
        '--work-dir', str(work_dir)
    ], timeout=300)
    for ext in ('md', 'json', 'csv', 'png'):
        assert (work_dir / f'time_to_accuracy.{ext}').stat().st_size > 0
    assert (work_dir / 'time_to_accuracy.png').read_bytes()[:4] == \
        b'\x89PNG'
    result = json.loads((work_dir / 'time_to_accuracy.json').read_text())
    assert set(result['models']) == {'lmd', 'mae'}
    for key, model in result['models'].items():
        curve = model['curve']
        assert len(curve) >= 2 and curve[0]['seconds'] == 0.0, key
        assert curve[-1]['iter'] == model['iters'] >= 1
        assert all(a['seconds'] <= b['seconds']
                   for a, b in zip(curve, curve[1:]))
        for point in curve:
            for name in ('knn', 'linear'):
                assert 0.0 <= point[name] <= 1.0
        assert len(model['init_seeds']['knn']) == 2
        assert len(model['split_noise']['linear']) == 2
        for s in model['summary'].values():
            assert s['noise'] >= 0 and isinstance(s['exceeds_noise'], bool)
    assert result['cache']['rows'] == 18  # 3 classes x 8, 6 held out
    assert result['data']['num_val'] == 6
    for name in ('knn', 'linear'):
        target = result['targets'][name]
        assert target['source'] == 'MAE final'
        assert target['target'] == result['models']['mae']['curve'][-1][name]
        assert target['mae_seconds'] is not None  # MAE reaches its own final
    table = (work_dir / 'time_to_accuracy.md').read_text()
    assert '| LMD |' in table and '| MAE |' in table
    assert 'ratio MAE / LMD' in table
    rows = (work_dir / 'time_to_accuracy.csv').read_text().splitlines()
    assert rows[0] == 'model,seconds,iter,knn,linear,probe_seconds'
    assert {r.split(',')[0] for r in rows[1:]} == {'lmd', 'mae'}
