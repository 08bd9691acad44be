"""--amp: bf16 autocast (projector in fp32), and its loss curve vs fp32."""
import tempfile

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from lmd_toolkit.engine.optim_wrappers import AutocastOptimWrapper
from lmd_toolkit.registry import MODELS
from lmd_toolkit.utils import register_all_modules
from lmd_toolkit.utils.launch import merge_amp_block

register_all_modules()

TINY_CONFIG = 'tests/data/tiny_lmd_photos.py'
NUM_ITERS = 16
# bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2 %) in the
# autocast matmul inputs and outputs; the loss (an fp32 MSE over ~10^4
# values) averages that rounding out, and 16 steps at lr 1e-3 let the two
# trajectories drift apart only slowly. Measured here (seed 0, 16 iterations,
# Zen 5 with native bf16): at most 0.045 % relative difference in any
# iteration, 0.005 % on the mean loss. The bounds are 10x / 20x that, for
# CPUs that emulate bf16 matmuls with other rounding; a precision bug
# (fp16-style overflow, parameters or optimizer state in bf16, the loss
# computed in bf16) moves the curve by more.
ITER_RTOL = 0.005
MEAN_RTOL = 0.001


class LossRecorder(Hook):
    """Keeps the training loss of every iteration."""

    def __init__(self) -> None:
        self.losses = []

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        self.losses.append(float(outputs['loss'].detach()))


def tiny_cfg(work_dir: str) -> Config:
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0, deterministic=False)
    cfg.train_cfg = dict(type='IterBasedTrainLoop',
                         max_iters=NUM_ITERS,
                         val_interval=10**6)
    cfg.param_scheduler = []  # constant lr: the curves differ only by dtype
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.default_hooks.pop('visualization')
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10**6)
    cfg.log_level = 'WARNING'
    return cfg


def train_losses(amp: bool) -> list:
    with tempfile.TemporaryDirectory() as work_dir:
        cfg = tiny_cfg(work_dir)
        if amp:
            merge_amp_block(cfg)  # what tools/train.py --amp does
        runner = Runner.from_cfg(cfg)
        recorder = LossRecorder()
        runner.register_hook(recorder, priority='LOWEST')
        runner.train()
        assert isinstance(runner.optim_wrapper, AutocastOptimWrapper) == amp
    return recorder.losses


def test_bf16_loss_curve_stays_close_to_fp32():
    fp32 = train_losses(amp=False)
    bf16 = train_losses(amp=True)
    assert len(fp32) == len(bf16) == NUM_ITERS
    rel = [abs(b - f) / f for b, f in zip(bf16, fp32)]
    assert max(rel) < ITER_RTOL, rel
    mean_f, mean_b = sum(fp32) / NUM_ITERS, sum(bf16) / NUM_ITERS
    assert abs(mean_b - mean_f) / mean_f < MEAN_RTOL
    # Both actually train (the last quarter below the first).
    for curve in (fp32, bf16):
        assert sum(curve[-4:]) < sum(curve[:4])


def test_autocast_runs_the_transformer_in_bf16_and_projector_in_fp32():
    cfg = Config.fromfile(TINY_CONFIG)
    model = MODELS.build(cfg.model)
    wrapper = AutocastOptimWrapper(
        optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3))
    seen = {}
    qkv = model.backbone.blocks[0].attn.qkv
    qkv.register_forward_hook(lambda m, i, o: seen.__setitem__('qkv', o.dtype))
    encode = model.projector._encode

    def recording_encode(x):
        seen['projector_in'] = x.dtype
        seen['projector_autocast'] = torch.is_autocast_enabled('cpu')
        return encode(x)

    model.projector._encode = recording_encode
    inputs = torch.rand(2, 3, 64, 64) * 2 - 1
    with wrapper.optim_context(model):
        loss = model(inputs, mode='loss')['loss']
    wrapper.update_params(loss)
    assert seen == dict(qkv=torch.bfloat16,
                        projector_in=torch.float32,
                        projector_autocast=False)
    assert loss.dtype == torch.float32  # the MSE is autocast to fp32
    assert all(p.dtype == torch.float32 for p in model.parameters())


# The machine-dependent choice of the wrapper and --amp's keep / refuse rules
# are tested with the block: tests/test_tools/test_config_blocks.py.
