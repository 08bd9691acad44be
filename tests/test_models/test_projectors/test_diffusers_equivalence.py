"""Equivalence with diffusers' AutoencoderKL / VQModel (test-only
reference, random weights): key mapping both ways, identical outputs."""
import json
import os.path as osp

import pytest
import torch

from lmd_toolkit.models.projectors.checkpoint import load_projector_weights
from lmd_toolkit.models.projectors.formats import (diffusers_config,
                                                   diffusers_to_ldm,
                                                   ldm_to_diffusers)
from lmd_toolkit.models.projectors.kl_vae import KLVAEProjector
from lmd_toolkit.models.projectors.vqgan import VQGANProjector

diffusers = pytest.importorskip('diffusers')

# diffusers configs equal to our 'micro-f4' presets (widths 8/16/32,
# GroupNorm 8, one ResnetBlock per level; VQ: attention in the last level).
KL_MICRO = dict(
    down_block_types=('DownEncoderBlock2D', ) * 3,
    up_block_types=('UpDecoderBlock2D', ) * 3,
    block_out_channels=(8, 16, 32),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=32)
VQ_MICRO = dict(
    KL_MICRO,
    down_block_types=('DownEncoderBlock2D', 'DownEncoderBlock2D',
                      'AttnDownEncoderBlock2D'),
    up_block_types=('AttnUpDecoderBlock2D', 'UpDecoderBlock2D',
                    'UpDecoderBlock2D'),
    num_vq_embeddings=64,
    vq_embed_dim=4,
    force_upcast=False,
    lookup_from_codebook=False)


@pytest.fixture(scope='module')
def diffusers_kl():
    torch.manual_seed(1)
    return diffusers.AutoencoderKL(**KL_MICRO).eval()


@pytest.fixture(scope='module')
def diffusers_vq():
    torch.manual_seed(2)
    model = diffusers.VQModel(**VQ_MICRO).eval()
    with torch.no_grad():  # codes at the scale of the latents: varied use
        model.quantize.embedding.weight.normal_(0, 0.5)
    return model


def _kl_from(source) -> KLVAEProjector:
    model = KLVAEProjector(preset='micro-f4')
    load_projector_weights(model, source)
    return model


def test_diffusers_kl_round_trip_is_lossless(diffusers_kl):
    state = diffusers_kl.state_dict()
    ours = _kl_from(dict(state)).state_dict()
    assert 'encoder.down.1.block.0.nin_shortcut.weight' in ours
    assert ours['encoder.mid.attn_1.q.weight'].shape == (32, 32, 1, 1)
    back = ldm_to_diffusers(ours)
    assert set(back) == set(state)
    for key, value in state.items():
        assert torch.equal(back[key], value), key


def test_diffusers_vq_round_trip_is_lossless(diffusers_vq):
    state = diffusers_vq.state_dict()
    ldm = diffusers_to_ldm(state)
    assert 'decoder.up.2.attn.1.proj_out.weight' in ldm  # up_blocks.0
    assert 'quantize.embedding.weight' in ldm
    back = ldm_to_diffusers(ldm)
    assert set(back) == set(state)
    assert all(torch.equal(back[k], v) for k, v in state.items())


def test_kl_outputs_match_diffusers(diffusers_kl, images):
    model = _kl_from(diffusers_kl.state_dict())
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        posterior = diffusers_kl.encode(images).latent_dist
        reference = diffusers_kl.decode(z).sample
    mean, logvar = model.encode_posterior(images)
    torch.testing.assert_close(model.encode(images), posterior.mean,
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(logvar.detach(), posterior.logvar, atol=1e-4,
                               rtol=0)
    torch.testing.assert_close(model.decode(z), reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize('legacy', [True, False])
def test_vq_outputs_match_diffusers(diffusers_vq, images, legacy):
    model = VQGANProjector(preset='micro-f4', legacy=legacy)
    load_projector_weights(model, diffusers_vq.state_dict())
    with torch.no_grad():
        h = diffusers_vq.encode(images).latents
        quant, loss, _ = diffusers_vq.quantize(h)
        image = diffusers_vq.decode(h).sample
    torch.testing.assert_close(model.encode_pre_quant(images).detach(), h,
                               atol=1e-4, rtol=0)
    z_q, our_loss, info = model.quantize(h)
    assert info['usage'] > 1 / 64  # more than one code in use
    torch.testing.assert_close(z_q, quant, atol=1e-6, rtol=0)
    torch.testing.assert_close(model.encode(images), quant, atol=1e-4, rtol=0)
    torch.testing.assert_close(model.decode(z_q), image, atol=1e-4, rtol=0)
    # Both loss terms have the same value; the weighting shows in gradients.
    # diffusers' quantiser uses taming's legacy weighting.
    torch.testing.assert_close(our_loss, loss)
    grads = []
    for quantizer in (model.quantize, diffusers_vq.quantize):
        quantizer.requires_grad_(True)
        quantizer.embedding.weight.grad = None
        z = h.clone().requires_grad_(True)
        quantizer(z)[1].backward()
        grads.append((z.grad, quantizer.embedding.weight.grad))
    model.quantize.requires_grad_(False)
    same = [torch.allclose(a, b) for a, b in zip(*grads)]
    assert same == ([True, True] if legacy else [False, False])


@pytest.mark.parametrize('layout', ['folder', 'pipeline', 'file'])
def test_diffusers_folder_and_file(tmp_path, diffusers_kl, layout, images):
    folder = osp.join(tmp_path, 'vae' if layout == 'pipeline' else 'kl')
    diffusers_kl.save_pretrained(folder)
    source = {
        'folder': folder,
        'pipeline': str(tmp_path),
        'file': osp.join(folder, 'diffusion_pytorch_model.safetensors')
    }[layout]
    model = _kl_from(source)
    with torch.no_grad():
        mean = diffusers_kl.encode(images).latent_dist.mean
    torch.testing.assert_close(model.encode(images), mean, atol=1e-4, rtol=0)


def test_diffusers_config_builds_same_model(tmp_path):
    arch = VQGANProjector(preset='micro-f4').arch
    config = diffusers_config(arch, 'vq')
    config.pop('_class_name')
    model = diffusers.VQModel(**config)
    ours = VQGANProjector(preset='micro-f4').state_dict()
    theirs = diffusers_to_ldm(model.state_dict())
    assert {k: v.shape for k, v in theirs.items()} == {
        k: v.shape
        for k, v in ours.items()
    }
    json.dumps(diffusers_config(KLVAEProjector(preset='kl-f8').arch, 'kl'))
