"""tools/model_converters/convert_projector.py, run in-process."""
import importlib.util
import os.path as osp

import pytest
import torch
from safetensors.torch import load_file

from lmd_toolkit.models.projectors.formats import ldm_to_diffusers
from lmd_toolkit.models.projectors.kl_vae import KLVAEProjector
from lmd_toolkit.models.projectors.vqgan import VQGANProjector

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))
_SCRIPT = osp.join(_ROOT, 'tools', 'model_converters', 'convert_projector.py')


@pytest.fixture(scope='module')
def convert():
    spec = importlib.util.spec_from_file_location('convert_projector',
                                                  _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_ldm_ckpt_to_diffusers_folder_and_back(tmp_path, convert):
    model = KLVAEProjector(preset='micro-f4')
    state = dict(model.state_dict())
    src = osp.join(tmp_path, 'model.ckpt')
    torch.save(dict(state_dict={**state, 'loss.logvar': torch.zeros(())}),
               src)
    folder = osp.join(tmp_path, 'diffusers')
    assert convert([src, folder, '--to', 'diffusers']) == 0
    written = load_file(
        osp.join(folder, 'diffusion_pytorch_model.safetensors'))
    expected = ldm_to_diffusers(state)
    assert set(written) == set(expected)
    assert all(torch.equal(written[k], v) for k, v in expected.items())
    # and back to LDM names, as .pth; the preset is found from the shapes
    dst = osp.join(tmp_path, 'back.pth')
    assert convert([folder, dst]) == 0
    back = torch.load(dst, weights_only=True)
    assert set(back) == set(state)
    assert all(torch.equal(back[k], v) for k, v in state.items())
    diffusers = pytest.importorskip('diffusers')
    loaded = diffusers.AutoencoderKL.from_pretrained(folder)  # config works
    assert set(loaded.state_dict()) == set(expected)


def test_never_overwrites_without_force(tmp_path, convert, capsys):
    state = VQGANProjector(preset='micro-f4').state_dict()
    src = osp.join(tmp_path, 'vq.pth')
    torch.save(state, src)
    dst = osp.join(tmp_path, 'out.safetensors')
    open(dst, 'w').close()
    assert convert([src, dst]) == 1
    assert '--force' in capsys.readouterr().err
    assert osp.getsize(dst) == 0
    assert convert([src, dst, '--force', '--preset', 'micro-f4']) == 0
    assert set(load_file(dst)) == set(state)


def test_mismatch_reports_differences(tmp_path, convert, capsys):
    state = KLVAEProjector(preset='micro-f4').state_dict()
    state = {k: v for k, v in state.items() if 'mid.' not in k}
    src = osp.join(tmp_path, 'partial.pth')
    torch.save(state, src)
    assert convert([src, osp.join(tmp_path, 'out.pth')]) == 1
    err = capsys.readouterr().err
    assert 'missing keys' in err and "preset='micro-f4'" in err
    assert not osp.exists(osp.join(tmp_path, 'out.pth'))
