"""Architecture, presets and frozen behaviour of the KL / VQ projectors."""
import inspect
import re

import pytest
import torch

from lmd_toolkit.models.projectors.kl_vae import KL_PRESETS, KLVAEProjector
from lmd_toolkit.models.projectors.vqgan import VQ_PRESETS, VQGANProjector
from lmd_toolkit.registry import MODELS


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_kl_f8_matches_ldm_checkpoint(ldm_key_list):
    model = KLVAEProjector(preset='kl-f8')
    assert _params(model) == 83_653_863  # 83.65 M, the SD v1 VAE
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == ldm_key_list('kl-f8')
    assert model.latent_channels == 4 and model.downsample_factor == 8
    assert tuple(model.decoder.conv_out.weight.shape) == (3, 128, 3, 3)


def test_vq_f8_matches_ldm_checkpoint(ldm_key_list):
    model = VQGANProjector(preset='vq-f8')
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == ldm_key_list('vq-f8')
    assert _params(model) == 67_717_295  # 67.72 M
    assert model.latent_channels == 4 and model.downsample_factor == 8


@pytest.mark.parametrize('cls,preset,f,d', [
    (KLVAEProjector, 'micro-f4', 4, 4),
    (KLVAEProjector, 'tiny-f8', 8, 4),
    (VQGANProjector, 'micro-f4', 4, 4),
])
def test_encode_decode_shapes(cls, preset, f, d, images):
    model = cls(preset=preset)
    z = model.encode(images)
    assert z.shape == (1, d, 32 // f, 32 // f)
    assert model.decode(z).shape == images.shape
    assert (model.downsample_factor, model.latent_channels) == (f, d)


def test_tiny_presets_keep_four_channels_per_group():
    """tiny-f8 keeps kl-f8's 4 channels per GroupNorm group. With 2 per
    group a flat (spatially constant) feature map leaves one sign per group
    after the norm, so different flat colours look alike to the next conv."""
    for cls in (KLVAEProjector, VQGANProjector):
        norms = [
            m for m in cls(preset='tiny-f8').modules()
            if isinstance(m, torch.nn.GroupNorm)
        ]
        assert norms and all(m.num_channels // m.num_groups >= 4
                             for m in norms)
    top = KLVAEProjector(preset='tiny-f8').decoder.norm_out  # 16 channels
    flat_a = torch.tensor([0.2, 0.5, 0.9, 1.4] * 4).view(1, 16, 1, 1)
    flat_b = torch.tensor([0.1, 0.7, 0.8, 2.0] * 4).view(1, 16, 1, 1)
    flat_a, flat_b = flat_a.expand(1, 16, 4, 4), flat_b.expand(1, 16, 4, 4)
    assert (top(flat_a) - top(flat_b)).abs().max() > 0.1
    two_per_group = torch.nn.GroupNorm(8, 16, eps=1e-6)
    torch.testing.assert_close(
        two_per_group(flat_a), two_per_group(flat_b), rtol=0, atol=1e-4)


def test_kl_f4_preset_shapes():
    cfg = KL_PRESETS['kl-f4']
    with torch.device('meta'):
        model = KLVAEProjector(preset='kl-f4')
    assert model.downsample_factor == 4 and model.latent_channels == 3
    assert model.quant_conv.weight.shape == (6, 6, 1, 1)
    assert len(model.encoder.down) == len(cfg['ch_mult'])
    # attention only in the mid block
    assert not any('.attn.' in k for k in model.state_dict())


def test_registry_build_and_custom_dict():
    model = MODELS.build(dict(type='KLVAEProjector', preset='micro-f4'))
    assert isinstance(model, KLVAEProjector)
    custom = dict(KL_PRESETS['micro-f4'], z_channels=2, embed_dim=2)
    model = MODELS.build(dict(type='KLVAEProjector', preset=custom))
    assert model.latent_channels == 2 and model.preset == 'custom'
    vq = MODELS.build(dict(type='VQGANProjector', preset='micro-f4'))
    assert vq.quantize.embedding.weight.shape == (
        VQ_PRESETS['micro-f4']['n_embed'], 4)


def test_bad_presets_name_the_fix():
    with pytest.raises(KeyError, match='kl-f8'):
        KLVAEProjector(preset='kl-f16')
    with pytest.raises(KeyError, match='unknown keys'):
        KLVAEProjector(preset=dict(KL_PRESETS['micro-f4'], chmult=(1, 2)))
    with pytest.raises(KeyError, match='n_embed'):
        VQGANProjector(preset=KL_PRESETS['micro-f4'])
    with pytest.raises(ValueError, match='divide'):
        KLVAEProjector(preset=dict(KL_PRESETS['micro-f4'], norm_groups=32))


@pytest.mark.parametrize('cls', [KLVAEProjector, VQGANProjector])
def test_frozen_no_grad_fp32_eval(cls, images):
    model = cls(preset='micro-f4')
    model.init_weights()
    model.train()
    assert not model.training
    assert not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    x = images.clone().requires_grad_(True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        z = model.encode(x)
        out = model.decode(z)
    assert not z.requires_grad and not out.requires_grad
    assert z.dtype == torch.float32 and out.dtype == torch.float32
    # same numbers as without autocast: the projector ran in fp32
    torch.testing.assert_close(z, model.encode(images))


def test_kl_posterior_mean_sample_and_gradients(images):
    model = KLVAEProjector(preset='micro-f4')
    x = images.clone().requires_grad_(True)
    mean, logvar = model.encode_posterior(x)
    (mean.sum() + logvar.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.testing.assert_close(model.encode(images), mean.detach())
    # logvar is clamped to [-30, 20]
    with torch.no_grad():
        model.quant_conv.bias[4:] = 1e4
    assert model.encode_posterior(images)[1].max() == 20.0
    sampler = KLVAEProjector(preset='micro-f4', sample_posterior=True)
    sampler.load_state_dict(model.state_dict())
    with torch.no_grad():
        sampler.quant_conv.bias[4:] = -2.0  # std ~0.37
    z1, z2 = sampler.encode(images), sampler.encode(images)
    assert not torch.allclose(z1, z2)
    mean = sampler.encode_posterior(images)[0]
    assert 0.2 < (z1 - mean).std() < 0.6


def test_scale_factor_applied_and_undone(images):
    ref = KLVAEProjector(preset='micro-f4')
    scaled = KLVAEProjector(preset='micro-f4', scale_factor=0.18215)
    scaled.load_state_dict(ref.state_dict())
    torch.testing.assert_close(
        scaled.encode(images), 0.18215 * ref.encode(images))
    z = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(scaled.decode(0.18215 * z), ref.decode(z))
    # a fixed factor is config, not a checkpoint key
    assert 'scale_factor' not in scaled.state_dict()
    with pytest.raises(ValueError):
        KLVAEProjector(preset='micro-f4', scale_factor='std')


def test_auto_scale_factor_calibrates_once_and_persists(images):
    model = KLVAEProjector(preset='micro-f4', scale_factor='auto')
    with pytest.raises(RuntimeError, match='not calibrated'):
        model.decode(torch.zeros(1, 4, 8, 8))
    z = model.encode(images)
    unscaled = model.encode_posterior(images)[0].detach()
    expected = 1.0 / unscaled.flatten().double().std().item()
    assert float(model.scale_factor) == pytest.approx(expected, rel=1e-5)
    assert z.std().item() == pytest.approx(1.0, rel=1e-3)
    # a second, different batch does not recalibrate
    model.encode(images * 0.1)
    assert float(model.scale_factor) == pytest.approx(expected, rel=1e-5)
    # the value lives in the state dict: a resumed model keeps it
    state = model.state_dict()
    assert 'scale_factor' in state
    resumed = KLVAEProjector(preset='micro-f4', scale_factor='auto')
    resumed.load_state_dict(state)
    torch.testing.assert_close(resumed.encode(images * 0.1),
                               model.encode(images * 0.1))


def test_vq_latent_options(images):
    model = VQGANProjector(preset='micro-f4')
    z = model.encode(images)
    codes = model.quantize.embedding.weight
    # the default latent is a codebook vector at every position
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    dist = (flat[:, None] - codes[None]).pow(2).sum(-1)
    assert dist.min(1).values.max() == 0
    pre = VQGANProjector(preset='micro-f4', latent='pre_quant')
    pre.load_state_dict(model.state_dict())
    h = pre.encode(images)
    assert not torch.allclose(h, z)
    # pre_quant decoding quantises first: same image as decoding z_q
    torch.testing.assert_close(pre.decode(h), model.decode(z))
    indices = model.quantize(h)[2]['indices']
    # z is the straight-through z + (z_q - z).detach(), equal to the looked-up
    # codes up to float rounding (~1e-7), which the decoder amplifies.
    torch.testing.assert_close(
        model.decode_indices(indices), model.decode(z), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match='latent'):
        VQGANProjector(preset='micro-f4', latent='indices')


@pytest.mark.parametrize('cls', [KLVAEProjector, VQGANProjector])
def test_docstring_args_match_signature(cls):
    doc = inspect.getdoc(cls)
    section = doc.split('Args:')[1].split('Returns:')[0]
    documented = re.findall(r'^    (\w+) \(', section, flags=re.M)
    params = [
        p for p in inspect.signature(cls.__init__).parameters
        if p not in ('self', 'args', 'kwargs')
    ]
    assert documented == params
