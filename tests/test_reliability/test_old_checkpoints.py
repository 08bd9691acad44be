"""Checkpoints written before the model redesign still load, strictly, and
give the same loss on the same batch (tests/data/pre_redesign/README.md)."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from lmd_toolkit.registry import MODELS
from lmd_toolkit.utils import register_all_modules

DATA = osp.join(osp.dirname(__file__), '..', 'data')
OLD = osp.join(DATA, 'pre_redesign')


@pytest.mark.parametrize('name, config', [('vit', 'tiny_lmd_photos.py'),
                                          ('unet', 'tiny_lmd_unet_photos.py')])
def test_pre_redesign_checkpoint_gives_the_same_loss(name, config):
    register_all_modules()
    model = MODELS.build(Config.fromfile(osp.join(DATA, config)).model)
    checkpoint = load_checkpoint(
        model, osp.join(OLD, f'lmd_{name}_iter4.pth'), map_location='cpu',
        strict=True)
    assert checkpoint['meta']['iter'] == 4
    # Every key keeps its name, except the U-Net's output layers, which
    # moved to its decoder neck (renamed on loading).
    moved = {
        f'backbone.{layer}.': f'neck.{layer}.'
        for layer in getattr(model.backbone, 'moved_to_neck', ())
    }
    assert len(moved) == (2 if name == 'unet' else 0)

    def today(key):
        for old, new in moved.items():
            if key.startswith(old):
                return new + key[len(old):]
        return key

    state = model.state_dict()
    old_state = {today(k): v for k, v in checkpoint['state_dict'].items()}
    assert sorted(state) == sorted(old_state)
    assert all(torch.equal(state[k], v) for k, v in old_state.items())
    images = torch.load(osp.join(OLD, f'batch_{name}.pth'), weights_only=True)
    expected = json.load(open(osp.join(OLD, 'losses.json')))[name]['loss']

    model.eval()
    model.mask_ratio = 0.6
    data = model.data_preprocessor(dict(inputs=list(images)), training=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        with torch.no_grad():
            loss = model(**data, mode='loss')['loss'].item()
    finally:
        torch.set_num_threads(threads)
    assert loss == pytest.approx(expected, rel=1e-5)
