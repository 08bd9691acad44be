"""Loading LDM / SD / bare checkpoints; errors; weights_only loading."""
import collections
import os.path as osp
import pickle

import pytest
import torch
from safetensors.torch import save_file

from lmd_toolkit.models.projectors.checkpoint import (
    CheckpointMismatchError, load_projector_weights, suggest_presets)
from lmd_toolkit.models.projectors.formats import diffusers_to_ldm
from lmd_toolkit.models.projectors.kl_vae import KLVAEProjector
from lmd_toolkit.models.projectors.vqgan import VQGANProjector


@pytest.fixture(scope='module')
def ldm_state():
    """Random micro-f4 KL weights in LDM names."""
    torch.manual_seed(4)
    return dict(KLVAEProjector(preset='micro-f4').state_dict())


def test_old_diffusers_attention_names_map():
    state = {
        'encoder.mid_block.attentions.0.query.weight': torch.ones(8, 8),
        'encoder.mid_block.attentions.0.proj_attn.bias': torch.ones(8),
        'decoder.up_blocks.0.upsamplers.0.conv.weight': torch.ones(1),
        'decoder.up_blocks.1.resnets.0.conv_shortcut.bias': torch.ones(1),
    }
    ldm = diffusers_to_ldm(state, num_levels=3)
    assert ldm['encoder.mid.attn_1.q.weight'].shape == (8, 8, 1, 1)
    assert set(ldm) == {
        'encoder.mid.attn_1.q.weight', 'encoder.mid.attn_1.proj_out.bias',
        'decoder.up.2.upsample.conv.weight',
        'decoder.up.1.block.0.nin_shortcut.bias'
    }


def test_ldm_checkpoint_with_loss_keys(tmp_path, ldm_state):
    ldm = ldm_state
    loss_keys = {
        'loss.logvar': torch.zeros(()),
        'loss.discriminator.main.0.weight': torch.ones(4, 3, 4, 4),
        'loss.perceptual_loss.lin0.model.1.weight': torch.ones(1, 4, 1, 1),
    }
    path = osp.join(tmp_path, 'model.ckpt')
    torch.save(dict(state_dict={**ldm, **loss_keys}, global_step=7,
                    epoch=1), path)
    model = KLVAEProjector(preset='micro-f4')
    report = load_projector_weights(model, path)
    assert sorted(report['dropped_loss_keys']) == sorted(loss_keys)
    assert report['ignored_keys'] == [] and report['format'] == 'ldm'
    for key, value in model.state_dict().items():
        assert torch.equal(value, ldm[key]), key


def test_sd_first_stage_prefix(tmp_path, ldm_state):
    ldm = ldm_state
    full = {f'first_stage_model.{k}': v for k, v in ldm.items()}
    full['model.diffusion_model.input_blocks.0.0.weight'] = torch.ones(2)
    full['cond_stage_model.transformer.x'] = torch.ones(2)
    path = osp.join(tmp_path, 'sd.safetensors')
    save_file(full, path)
    model = KLVAEProjector(preset='micro-f4', checkpoint=path)
    model.init_weights()
    assert torch.equal(model.decoder.conv_out.weight,
                       ldm['decoder.conv_out.weight'])
    assert not any(p.requires_grad for p in model.parameters())


def test_partial_checkpoint_lists_missing_keys_and_preset(tmp_path):
    source = KLVAEProjector(preset='micro-f4').state_dict()
    partial = {k: v for k, v in source.items() if not k.startswith('decoder')}
    model = KLVAEProjector(preset='micro-f4')
    with pytest.raises(CheckpointMismatchError) as err:
        load_projector_weights(model, partial)
    message = str(err.value)
    n_missing = sum(k.startswith('decoder') for k in source)
    assert f'{n_missing} missing keys (first 10)' in message
    assert 'decoder.conv_in.weight' in message
    assert "closest is KLVAEProjector(preset='micro-f4')" in message


def test_wrong_preset_names_the_preset_that_fits():
    state = VQGANProjector(preset='micro-f4').state_dict()
    with pytest.raises(CheckpointMismatchError) as err:
        load_projector_weights(KLVAEProjector(preset='micro-f4'), state)
    message = str(err.value)
    assert "fit exactly: VQGANProjector(preset='micro-f4')" in message
    assert '31 unexpected keys (first 10)' in message  # attn, quantize
    assert 'shape mismatches' in message  # encoder.conv_out 8 vs 4 channels
    ranked = suggest_presets(state)
    assert ranked[0] == ('VQGANProjector', 'micro-f4', 0)


class _NotATensor:
    """Any class: unpickling it needs code, which weights_only refuses."""


def test_pickled_objects_are_refused(tmp_path):
    state = KLVAEProjector(preset='micro-f4').state_dict()
    path = osp.join(tmp_path, 'evil.pth')
    torch.save(dict(state_dict=state, payload=_NotATensor()), path)
    with pytest.raises(pickle.UnpicklingError, match='weights_only=True'):
        load_projector_weights(KLVAEProjector(preset='micro-f4'), path)
    # plain containers are fine (an OrderedDict, as torch.save writes)
    ok = osp.join(tmp_path, 'ok.pth')
    torch.save(collections.OrderedDict(state), ok)
    load_projector_weights(KLVAEProjector(preset='micro-f4'), ok)


def test_auto_scale_factor_in_checkpoint(images):
    model = KLVAEProjector(preset='micro-f4', scale_factor='auto')
    model.encode(images)
    state = model.state_dict()
    restored = KLVAEProjector(preset='micro-f4', scale_factor='auto')
    report = load_projector_weights(restored, state)
    assert report['scale_factor'] == pytest.approx(float(model.scale_factor))
    assert float(restored.scale_factor) == float(model.scale_factor)
    # official weights carry no factor: 'auto' stays uncalibrated
    fresh = KLVAEProjector(preset='micro-f4', scale_factor='auto')
    state.pop('scale_factor')
    load_projector_weights(fresh, state)
    assert float(fresh.scale_factor) == 0.0
    # a fixed projector ignores a stored factor
    fixed = KLVAEProjector(preset='micro-f4', scale_factor=0.5)
    load_projector_weights(fixed, model.state_dict())
    assert float(fixed.scale_factor) == 0.5


