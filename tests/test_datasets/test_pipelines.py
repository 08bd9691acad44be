import os
import os.path as osp
import subprocess
import sys

import numpy as np
import torch
from mmengine.registry import DefaultScope
from PIL import Image

from lmd_toolkit.datasets import load_photo
from lmd_toolkit.registry import DATASETS

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

TRAIN_PIPELINE = [
    dict(
        type='mmpretrain.RandomResizedCrop',
        scale=64,
        crop_ratio_range=(0.2, 1.0)),
    dict(type='mmpretrain.RandomFlip', prob=0.5),
    dict(type='mmpretrain.PackInputs'),
]


def build_in_scope(cfg):
    """Build a dataset the way mmengine's Runner does."""
    with DefaultScope.overwrite_default_scope('lmd_toolkit'):
        return DATASETS.build(cfg)


def test_mmpretrain_pipeline_from_config_on_embedded_photos():
    dataset = build_in_scope(
        dict(
            type='EmbeddedPhotos',
            split='val',
            num_crops=3,
            crop_size=96,
            pipeline=TRAIN_PIPELINE))
    from mmpretrain.registry import TRANSFORMS as MMPRETRAIN_TRANSFORMS
    expected = [
        MMPRETRAIN_TRANSFORMS.get(cfg['type'].split('.', 1)[1])
        for cfg in TRAIN_PIPELINE
    ]
    assert [type(t) for t in dataset.pipeline.transforms] == expected
    item = dataset[0]
    assert isinstance(item['inputs'], torch.Tensor)
    assert item['inputs'].dtype == torch.uint8
    assert item['inputs'].shape == (3, 64, 64)
    sample = item['data_samples']
    assert type(sample).__name__ == 'DataSample'
    assert sample.img_path == 'skimage:chelsea'
    assert sample.ori_shape == (96, 96)
    assert sample.img_shape[:2] == (64, 64)  # mmpretrain's crop adds C


def test_pack_inputs_keeps_rgb_order():
    dataset = build_in_scope(
        dict(
            type='EmbeddedPhotos',
            split='val',
            num_crops=2,
            pipeline=[dict(type='mmpretrain.PackInputs')]))
    item = dataset[0]
    x1, y1, x2, y2 = dataset.get_data_info(0)['crop_box']
    crop = load_photo('skimage:chelsea', dataset.max_size)[y1:y2, x1:x2]
    # Channel 0 of the packed tensor is red.
    np.testing.assert_array_equal(item['inputs'].permute(1, 2, 0).numpy(),
                                  crop)


def test_mmpretrain_pipeline_from_config_on_image_folder(tmp_path):
    red = np.zeros((80, 90, 3), np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).save(tmp_path / 'red.png')
    Image.fromarray(np.full((50, 40), 30, np.uint8)).save(tmp_path / 'g.jpg')
    dataset = build_in_scope(
        dict(
            type='ImageFolderDataset',
            data_root=str(tmp_path),
            pipeline=TRAIN_PIPELINE))
    shapes = {tuple(dataset[i]['inputs'].shape) for i in range(len(dataset))}
    assert shapes == {(3, 64, 64)}
    red_inputs = dataset[1]['inputs']
    assert dataset[1]['data_samples'].img_path.endswith('red.png')
    assert (red_inputs[0] == 255).all() and (red_inputs[1:] == 0).all()


def test_scoped_names_resolve_without_importing_mmpretrain_first():
    # A fresh interpreter, as under tools/train.py: nothing imports
    # mmpretrain; mmengine imports ``mmpretrain.registry`` (and through its
    # locations ``mmpretrain.datasets``) when it meets the prefix.
    script = '\n'.join([
        'import sys',
        'from mmengine.registry import DefaultScope',
        'from lmd_toolkit.registry import DATASETS',
        "assert 'mmpretrain' not in sys.modules",
        "with DefaultScope.overwrite_default_scope('lmd_toolkit'):",
        "    ds = DATASETS.build(dict(type='EmbeddedPhotos', split='val',",
        f'        num_crops=1, pipeline={TRAIN_PIPELINE!r}))',
        "print(tuple(ds[0]['inputs'].shape), ds[0]['inputs'].dtype)",
    ])
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    result = subprocess.run([sys.executable, '-c', script],
                            capture_output=True,
                            text=True,
                            env=env,
                            cwd=REPO_ROOT,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith('(3, 64, 64) torch.uint8')
