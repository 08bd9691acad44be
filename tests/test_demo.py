"""The demo's model on the embedded photos, in a short in-process run of the
demo config's model and optimizer (300 of its 2000 iterations): the loss at
a fixed ratio falls clearly and held-out reconstructions improve.

That the full demo's reconstructions beat the mean-latent baseline takes
~1000 iterations, too long for a test; it is measured on the demo's
checkpoint by tools/analysis_tools/eval_reconstruction.py (README)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.optim import build_optim_wrapper

from lmd_toolkit.engine.mask_schedulers import CosineMaskRatio
from lmd_toolkit.registry import DATASETS, MODELS
from lmd_toolkit.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(ROOT, 'configs', 'lmd_vit-tiny_pixel_photos_cs.py')

register_all_modules()


def psnr(pred, gt):
    mse = ((pred.clamp(-1, 1) - gt)**2 * 127.5**2).flatten(1).mean(1)
    return (10 * torch.log10(255.0**2 / mse)).mean().item()


@pytest.fixture(scope='module')
def trained():
    torch.manual_seed(0)
    cfg = Config.fromfile(DEMO)
    model = MODELS.build(cfg.model)
    model.init_weights()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    val_set = DATASETS.build(cfg.val_dataloader.dataset)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=16, shuffle=True, collate_fn=default_collate,
        generator=torch.Generator().manual_seed(0))
    val_batch = default_collate([val_set[i] for i in range(0, 128, 4)])
    val_inputs = model.data_preprocessor(val_batch, False)['inputs']

    def val_psnr():
        model.eval()
        out = model.reconstruct(val_inputs, 0.5,
                                torch.Generator().manual_seed(0))
        model.train()
        return psnr(out['pred_img'], val_inputs)

    def val_loss():
        model.eval()
        with torch.no_grad():
            gen = torch.Generator().manual_seed(1)
            z = model.projector.encode(val_inputs)
            x, mask, ids = model.backbone.forward_masked(z, 0.5, gen)
            loss = model.head.loss(model.neck(x, ids), z, mask).item()
        model.train()
        return loss

    before = val_loss(), val_psnr()
    iters, sched = 300, CosineMaskRatio()
    step = 0
    while step < iters:
        for batch in loader:
            model.mask_ratio = sched.ratio(step, iters)
            model.train_step(batch, wrapper)
            step += 1
            if step == iters:
                break
    after = val_loss(), val_psnr()
    model.eval()
    return model, val_inputs, before, after


def test_validation_loss_falls_clearly(trained):
    _, _, (loss_before, _), (loss_after, _) = trained
    assert loss_after < 0.5 * loss_before, (loss_before, loss_after)


def test_held_out_reconstructions_improve(trained):
    _, _, (_, psnr_before), (_, psnr_after) = trained
    assert psnr_after > psnr_before + 3.0, (psnr_before, psnr_after)
