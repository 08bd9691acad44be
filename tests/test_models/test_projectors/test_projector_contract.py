"""The projector contract: stage-1 regularisers against their formulas,
the pure checkpoint-format functions and the loader's hint."""
import inspect

import pytest
import torch
import torch.nn.functional as F

from lmd_toolkit.models.algorithms.autoencoder_trainer import \
    AutoencoderTrainer
from lmd_toolkit.models.projectors import (BaseProjector, IdentityProjector,
                                           KLVAEProjector, VQGANProjector)
from lmd_toolkit.models.projectors import checkpoint, formats
from lmd_toolkit.models.projectors.presets import all_presets
from lmd_toolkit.utils import register_all_modules

FAMILIES = {'kl': KLVAEProjector, 'vq': VQGANProjector}


def test_kl_regulariser_is_the_gaussian_kl_batch_mean():
    model = KLVAEProjector(preset='micro-f4')
    mean = torch.tensor([[0.5, -1.0], [0.0, 2.0]]).view(2, 2, 1, 1)
    logvar = torch.tensor([[0.0, 1.0], [-2.0, 0.3]]).view(2, 2, 1, 1)
    per_image = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).flatten(1).sum(1)
    torch.testing.assert_close(
        model.kl_loss(mean, logvar), per_image.sum() / 2)


def test_kl_reconstruct_uses_the_posterior(images):
    torch.manual_seed(0)
    model = KLVAEProjector(preset='micro-f4').unfreeze()
    mean, logvar = model.encode_posterior(images)
    x_hat, terms = model.reconstruct(images, sample_posterior=False)
    assert model.regularizer == 'kl' and list(terms) == ['loss']
    assert torch.equal(terms['loss'], model.kl_loss(mean, logvar))
    assert torch.equal(x_hat, model._decode(mean))
    x_hat.mean().backward()  # gradients reach the encoder
    assert model.encoder.conv_in.weight.grad is not None
    torch.manual_seed(1)
    sampled, _ = model.reconstruct(images, sample_posterior=True)
    torch.manual_seed(1)
    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    assert torch.equal(sampled, model._decode(z))


@pytest.mark.parametrize('legacy', [False, True])
def test_vq_regulariser_is_codebook_plus_commitment(images, legacy):
    torch.manual_seed(0)
    model = VQGANProjector(preset='micro-f4', beta=0.3, legacy=legacy)
    model.unfreeze()
    x_hat, terms = model.reconstruct(images)
    assert model.regularizer == 'codebook'
    assert set(terms) == {'loss', 'perplexity'}
    h = model.encode_pre_quant(images).detach()
    flat = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])
    codes = model.quantize.embedding.weight.detach()
    nearest = torch.cdist(flat, codes).argmin(1)
    z_q = codes[nearest].view(1, h.shape[2], h.shape[3], -1).permute(
        0, 3, 1, 2)
    codebook, commitment = F.mse_loss(z_q, h), F.mse_loss(h, z_q)
    expected = (0.3 * codebook + commitment) if legacy else (
        codebook + 0.3 * commitment)
    torch.testing.assert_close(terms['loss'], expected)
    # The straight-through estimate h + (z_q - h) equals z_q only up to an
    # ulp of h; the decoder amplifies that (1e-5 on some CPUs' kernels).
    torch.testing.assert_close(x_hat, model.decode_codes(z_q), rtol=1e-4,
                               atol=1e-4)


def test_identity_has_no_regulariser(images):
    model = IdentityProjector()
    x_hat, terms = model.reconstruct(images)
    assert model.regularizer is None and x_hat is images
    assert terms['loss'] == 0
    with pytest.raises(NotImplementedError, match='no decoder'):
        model.last_layer()


@pytest.mark.parametrize('cls', list(FAMILIES.values()))
def test_last_layer_is_the_decoder_output_weight(cls):
    model = cls(preset='micro-f4')
    assert model.last_layer() is model.decoder.conv_out.weight


def test_one_base_owns_scale_and_freezing():
    for cls in (KLVAEProjector, VQGANProjector, IdentityProjector):
        assert issubclass(cls, BaseProjector)
        assert cls.__mro__[1] is BaseProjector  # no intermediate base
        for name in ('encode', 'decode', 'freeze', 'fingerprint',
                     'calibrate_scale_factor', 'init_weights'):
            assert name not in vars(cls), (cls, name)
    assert IdentityProjector(scale_factor=0.5).scale_factor == 0.5
    with pytest.raises(ValueError, match='a number'):
        IdentityProjector(scale_factor='auto')
    model = KLVAEProjector(preset='micro-f4', scale_factor='auto')
    assert 'scale_factor' in dict(model.named_buffers())


@pytest.mark.parametrize('family', ['kl', 'vq'])
def test_preset_shapes_match_the_classes(family):
    """The hint's shape table is built without the projector classes; it
    must stay what the classes build."""
    for preset in all_presets()[family]:
        with torch.device('meta'):
            model = FAMILIES[family](preset=preset)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert checkpoint.preset_shapes(family, preset) == expected


def test_format_functions_are_pure():
    """No file access and no model classes in the key layouts; the loader
    builds its hint without importing the classes."""
    source = inspect.getsource(formats)
    for word in ('open(', 'torch.load', 'kl_vae', 'vqgan', 'import torch\n'):
        assert word not in source, word
    assert 'kl_vae' not in inspect.getsource(checkpoint)
    assert 'vqgan' not in inspect.getsource(checkpoint)


@pytest.mark.parametrize('family', ['kl', 'vq'])
def test_ldm_diffusers_round_trip(family):
    torch.manual_seed(0)
    state = FAMILIES[family](preset='micro-f4').state_dict()
    diff = formats.ldm_to_diffusers(state)
    assert not any('.down.' in k or '.mid.' in k for k in diff)
    back = formats.diffusers_to_ldm(diff)
    assert list(back) == list(state)
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_known_keys_map_both_ways():
    """micro-f4 has 3 levels: LDM decoder.up.0 is diffusers up_blocks.2."""
    conv = torch.zeros(8, 8, 1, 1)
    state = {
        'decoder.up.0.block.0.nin_shortcut.weight': torch.zeros(8, 16, 1, 1),
        'decoder.up.2.upsample.conv.weight': torch.zeros(32, 32, 3, 3),
        'encoder.mid.attn_1.q.weight': conv,
        'encoder.mid.block_2.norm1.bias': torch.zeros(8),
        'encoder.down.1.downsample.conv.bias': torch.zeros(8),
        'decoder.norm_out.weight': torch.zeros(8),
        'quant_conv.weight': torch.zeros(8, 8, 1, 1),
    }
    diff = formats.ldm_to_diffusers(state, num_levels=3)
    assert list(diff) == [
        'decoder.up_blocks.2.resnets.0.conv_shortcut.weight',
        'decoder.up_blocks.0.upsamplers.0.conv.weight',
        'encoder.mid_block.attentions.0.to_q.weight',
        'encoder.mid_block.resnets.1.norm1.bias',
        'encoder.down_blocks.1.downsamplers.0.conv.bias',
        'decoder.conv_norm_out.weight',
        'quant_conv.weight',
    ]
    assert diff['encoder.mid_block.attentions.0.to_q.weight'].shape == (8, 8)
    back = formats.diffusers_to_ldm(diff, num_levels=3)
    assert list(back) == list(state)
    assert back['encoder.mid.attn_1.q.weight'].shape == (8, 8, 1, 1)


def test_convert_to_ldm_strips_prefix_and_loss_keys():
    obj = {'state_dict': {'first_stage_model.encoder.conv_in.weight':
                          torch.ones(1),
                          'first_stage_model.loss.logvar': torch.ones(1),
                          'model.diffusion.weight': torch.ones(1)},
           'epoch': 3}
    state, report = formats.convert_to_ldm(obj)
    assert list(state) == ['encoder.conv_in.weight']
    assert report == dict(dropped_loss_keys=['loss.logvar'],
                          ignored_keys=['model.diffusion.weight'],
                          format='ldm')


def test_loader_hint_names_the_fitting_class_and_preset():
    torch.manual_seed(0)
    state = KLVAEProjector(preset='micro-f4').state_dict()
    with pytest.raises(checkpoint.CheckpointMismatchError) as err:
        checkpoint.check_state_dict(VQGANProjector(preset='micro-f4'), state,
                                    'model.ckpt')
    message = str(err.value)
    assert "model.ckpt does not fit VQGANProjector(preset='micro-f4')" in \
        message
    assert ("fit exactly: KLVAEProjector(preset='micro-f4'); build the "
            'projector with that preset') in message


def test_trainer_refuses_a_projector_without_regulariser():
    register_all_modules()
    with pytest.raises(TypeError, match='KLVAEProjector or VQGANProjector'):
        AutoencoderTrainer(
            projector=dict(type='IdentityProjector'),
            discriminator=dict(type='NLayerDiscriminator', ndf=8,
                               n_layers=2),
            perceptual_weight=0)
