"""AutoencoderTrainer: GAN schedule, adaptive weight wiring, both optimizer
steps, predict contract, a real short training, and stage 1 -> stage 2."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapperDict, build_optim_wrapper

from lmd_toolkit.datasets import EmbeddedPhotos
from lmd_toolkit.models.losses import hinge_g_loss
from lmd_toolkit.registry import MODELS
from lmd_toolkit.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
register_all_modules()


def build(family='kl', **kwargs):
    projector = dict(
        type='KLVAEProjector' if family == 'kl' else 'VQGANProjector',
        preset='micro-f4')
    cfg = dict(
        type='AutoencoderTrainer',
        projector=projector,
        discriminator=dict(type='NLayerDiscriminator', ndf=8, n_layers=2),
        perceptual_weight=0.0,
        disc_start=0)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def optimizers(model, lr=1e-3):
    adam = dict(type='Adam', lr=lr, betas=(0.5, 0.9))
    return build_optim_wrapper(
        model,
        dict(constructor='AutoencoderOptimWrapperConstructor',
             generator=dict(type='OptimWrapper', optimizer=adam),
             discriminator=dict(type='OptimWrapper', optimizer=adam)))


def set_iter(i):
    MessageHub.get_current_instance().update_info('iter', i)


def batch(n=2, size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return dict(inputs=torch.randint(0, 256, (n, 3, size, size),
                                     generator=gen, dtype=torch.uint8))


def test_projector_is_trainable_and_frozen_by_default():
    model = build()
    model.init_weights()  # must not re-freeze the unfrozen projector
    model.train()
    assert model.projector.training and model.projector.trainable
    assert all(p.requires_grad for p in model.projector.parameters())
    frozen = MODELS.build(dict(type='KLVAEProjector', preset='micro-f4'))
    frozen.train()
    assert not frozen.training
    assert not any(p.requires_grad for p in frozen.parameters())


def test_optim_wrapper_dict_splits_parameters():
    model = build()
    ow = optimizers(model)
    assert isinstance(ow, OptimWrapperDict)
    assert set(ow.keys()) == {'generator', 'discriminator'}
    ids = {
        name: {id(p) for g in w.optimizer.param_groups for p in g['params']}
        for name, w in ow.items()
    }
    assert ids['generator'] == {id(p) for p in model.projector.parameters()}
    assert ids['discriminator'] == {
        id(p)
        for p in model.discriminator.parameters()
    }
    with pytest.raises(TypeError, match='OptimWrapperDict'):
        model.train_step(batch(), ow['generator'])


def test_train_step_updates_both_and_generator_loss_leaves_disc_alone():
    model = build()
    ow = optimizers(model)
    set_iter(0)
    proj0 = [p.detach().clone() for p in model.projector.parameters()]
    disc0 = [p.detach().clone() for p in model.discriminator.parameters()]
    seen = {}

    g_step, d_backward = ow['generator'].step, ow['discriminator'].backward

    def spy_g(**kw):
        g_step(**kw)
        seen['disc_after_g'] = [
            p.detach().clone() for p in model.discriminator.parameters()
        ]

    def spy_d(loss, **kw):
        seen['disc_grads_before_d'] = [
            p.grad for p in model.discriminator.parameters()
        ]
        d_backward(loss, **kw)

    ow['generator'].step = spy_g
    ow['discriminator'].backward = spy_d
    log = model.train_step(batch(), ow)
    # the generator step did not touch (nor leave gradients on) D
    assert all(torch.equal(a, b) for a, b in zip(disc0,
                                                 seen['disc_after_g']))
    assert all(g is None or not g.any()
               for g in seen['disc_grads_before_d'])
    # both parameter sets changed
    assert any(not torch.equal(a, p)
               for a, p in zip(proj0, model.projector.parameters()))
    assert any(not torch.equal(a, p)
               for a, p in zip(disc0, model.discriminator.parameters()))
    for key in ('loss', 'loss_rec', 'loss_kl', 'loss_g', 'loss_d', 'gamma'):
        assert torch.isfinite(log[key]), key
    assert log['gamma'] > 0 and log['loss_d'] > 0


def test_gan_off_before_disc_start_on_after():
    model = build(disc_start=5)
    ow = optimizers(model)
    disc0 = [p.detach().clone() for p in model.discriminator.parameters()]
    set_iter(4)
    log = model.train_step(batch(), ow)
    assert log['gamma'] == 0 and log['loss_g'] == 0 and log['loss_d'] == 0
    assert all(torch.equal(a, p)
               for a, p in zip(disc0, model.discriminator.parameters()))
    set_iter(5)
    log = model.train_step(batch(), ow)
    assert log['gamma'] > 0 and log['loss_d'] != 0
    assert any(not torch.equal(a, p)
               for a, p in zip(disc0, model.discriminator.parameters()))
    set_iter(0)


def test_logged_gamma_is_formula_at_decoder_conv_out():
    # perceptual term included in L_rec, as taming / LDM do
    model = build(perceptual_weight=1.0, lpips_net='alex',
                  lpips_pnet_rand=True, sample_posterior=False,
                  disc_weight=0.5)
    ow = optimizers(model)
    data = batch(seed=3)
    set_iter(0)
    x = model.data_preprocessor(data, True)['inputs']
    x_hat, _ = model.reconstruct(x)
    rec = (x_hat - x).abs().mean() + model.perceptual_loss(x_hat, x).mean()
    state = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    g = hinge_g_loss(model.discriminator(x_hat))
    last = model.projector.decoder.conv_out.weight
    g_rec, = torch.autograd.grad(rec, last, retain_graph=True)
    g_gan, = torch.autograd.grad(g, last)
    model.discriminator.load_state_dict(state)  # undo BN running stats
    expected = 0.5 * g_rec.norm() / (g_gan.norm() + 1e-4)
    log = model.train_step(data, ow)
    assert log['gamma'].item() == pytest.approx(expected.item(), rel=1e-4)
    assert log['loss_perceptual'] > 0


def test_vq_logs_codebook_and_perplexity():
    model = build('vq')
    set_iter(0)
    log = model.train_step(batch(), optimizers(model))
    assert log['loss_codebook'] > 0
    assert 1 <= log['perplexity'] <= 64
    assert 'loss_kl' not in log


def test_predict_contract():
    model = build().eval()
    data = batch(3)
    out = model.val_step(data)
    assert len(out) == 3
    for i, sample in enumerate(out):
        assert sample['pred_img'].dtype == torch.float32
        assert sample['pred_img'].shape == (3, 32, 32)
        assert 0 <= sample['pred_img'].min() <= sample['pred_img'].max() <= 255
        assert torch.allclose(sample['gt_img'], data['inputs'][i].float(),
                              atol=1e-4)
    with pytest.raises(ValueError, match='train_step'):
        model(torch.zeros(1, 3, 32, 32), mode='loss')


def test_perceptual_weight_needs_weights(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='vgg16-397923af.pth'):
        build(perceptual_weight=1.0)


def test_short_training_lowers_reconstruction_loss():
    dataset = EmbeddedPhotos(split='train', crop_size=16, num_crops=4)
    imgs = np.stack([dataset[i]['img'] for i in range(4)])
    data = dict(inputs=torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous())
    model = build(disc_start=10**9)
    ow = optimizers(model, lr=3e-3)
    set_iter(0)

    def eval_l1():
        out = model.val_step(data)
        return float(
            np.mean([(s['pred_img'] - s['gt_img']).abs().mean().item()
                     for s in out]))

    before = eval_l1()
    model.train()
    logs = [model.train_step(data, ow)['loss_rec'].item() for _ in range(30)]
    after = eval_l1()
    assert np.mean(logs[-5:]) < 0.7 * np.mean(logs[:5]), logs
    assert after < 0.7 * before, (before, after)


def test_stage1_checkpoint_loads_into_lmd_config(tmp_path):
    from mmengine.runner import Runner
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/projectors/klvae_tiny-f8_photos.py'))
    cfg.work_dir = str(tmp_path)
    cfg.model.projector.preset = 'micro-f4'
    cfg.model.discriminator.update(ndf=8, n_layers=2)
    cfg.model.disc_start = 1
    cfg.train_dataloader.update(batch_size=2)
    cfg.train_dataloader.dataset.update(crop_size=32, num_crops=4)
    cfg.val_dataloader = None
    cfg.val_cfg = None
    cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.train_cfg.update(max_iters=2, val_interval=10)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.param_scheduler = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = osp.join(str(tmp_path), 'iter_2.pth')
    assert osp.isfile(ckpt)
    trained = {
        k[len('projector.'):]: v.clone()
        for k, v in runner.model.state_dict().items()
        if k.startswith('projector.')
    }

    lmd = Config.fromfile(
        osp.join(ROOT, 'configs/lmd_vit-tiny_pixel_photos_cs.py'))
    model_cfg = lmd.model
    model_cfg.projector = dict(type='KLVAEProjector', preset='micro-f4',
                               checkpoint=ckpt)
    model_cfg.backbone.update(arch=dict(embed_dims=32, num_layers=1,
                                        num_heads=2),
                              in_channels=4, latent_size=16, patch_size=2)
    model_cfg.neck.update(num_patches=64, patch_size=2, in_channels=4,
                          embed_dims=32, decoder_embed_dims=16,
                          decoder_depth=1, decoder_num_heads=2)
    model_cfg.head.patch_size = 2
    model = MODELS.build(model_cfg)
    model.init_weights()
    loaded = model.projector.state_dict()
    assert set(loaded) == set(trained)
    assert all(torch.equal(loaded[k], trained[k]) for k in trained)
    # and frozen again for stage 2
    assert not any(p.requires_grad for p in model.projector.parameters())
    model.train()
    assert not model.projector.training


def test_stage1_demo_config_inits_convs_with_unit_gain():
    """The demo's init_cfg replaces PyTorch's default conv init (gain
    1/sqrt(3): std * sqrt(fan_in) = 0.577) by unit-gain Kaiming-normal
    (1.0) with zero biases, on every convolution of the projector."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/projectors/klvae_tiny-f8_photos.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)

    def gains():
        return {
            name: m.weight.std().item() * m.weight[0].numel()**0.5
            for name, m in model.projector.named_modules()
            if isinstance(m, torch.nn.Conv2d) and m.weight.numel() >= 2000
        }

    before = gains()
    assert len(before) > 20
    assert np.median(list(before.values())) == pytest.approx(3**-0.5,
                                                             abs=0.03)
    disc = [p.clone() for p in model.discriminator.parameters()]
    model.init_weights()
    after = gains()
    assert set(after) == set(before)
    for name, gain in after.items():
        assert gain == pytest.approx(1.0, abs=0.12), name
    for m in model.projector.modules():
        if isinstance(m, torch.nn.Conv2d):
            assert not m.bias.any()
    # The discriminator keeps its own (taming) init.
    assert all(torch.equal(a, b)
               for a, b in zip(disc, model.discriminator.parameters()))
