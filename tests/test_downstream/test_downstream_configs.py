"""Every downstream config loads, builds in a reduced size and trains one
step; the ImageNet fine-tuning pipeline runs (RandAugment's scope)."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.optim import build_optim_wrapper

from lmd_toolkit.registry import MODELS

from helpers import uint8_batch  # noqa: I100

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'downstream', '*.py')))


def shrink(cfg: Config) -> None:
    backbone = cfg.model.backbone
    backbone.encoder.arch = dict(embed_dims=32, num_layers=2, num_heads=2)
    backbone.init_cfg = None
    if backbone.projector.type == 'KLVAEProjector':
        backbone.projector.update(preset='tiny-f8', checkpoint=None)
        backbone.encoder.latent_size = 4
    else:
        backbone.encoder.latent_size = 32
        backbone.encoder.patch_size = 8
    cfg.model.head.in_channels = 32
    if cfg.model.get('neck'):
        cfg.model.neck.input_features = 32


@pytest.mark.parametrize('config', CONFIGS,
                         ids=[osp.basename(c) for c in CONFIGS])
def test_config_trains_one_step(config):
    cfg = Config.fromfile(config)
    assert cfg.val_evaluator.type == 'mmpretrain.Accuracy'
    assert tuple(cfg.val_evaluator.topk) == (1, 5)
    assert any(h.type == 'AccuracyIncreaseTimeHook' for h in cfg.custom_hooks)
    linprobe = 'linprobe' in config
    assert cfg.model.backbone.get('freeze_encoder', False) == linprobe
    shrink(cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    head = model.head.fc.weight.detach().clone()
    block = model.backbone.encoder.blocks[0].mlp.fc1.weight.detach().clone()
    log_vars = model.train_step(uint8_batch(8), wrapper)
    assert torch.isfinite(log_vars['loss'])
    assert not torch.equal(head, model.head.fc.weight)
    block_changed = not torch.equal(
        block, model.backbone.encoder.blocks[0].mlp.fc1.weight)
    assert block_changed != linprobe


def test_in1k_finetune_pipeline_runs_on_an_image():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/datasets/in1k_finetune.py'))
    pipeline = Compose(cfg.train_pipeline[1:])  # without the file loader
    img = np.random.default_rng(0).integers(0, 256, (300, 260, 3),
                                            dtype=np.uint8)
    out = pipeline(dict(img=img, img_shape=img.shape[:2], gt_label=3))
    assert tuple(out['inputs'].shape) == (3, 224, 224)
