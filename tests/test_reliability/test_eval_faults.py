"""Evaluation and inference load checkpoints strictly and safely, and a
failed evaluation never touches earlier results (docs/en/reliability.md).

Tools run in-process on the tiny 64 px LMD of tests/data (random weights,
8 validation crops)."""
import json
import os
import os.path as osp
import re
import sys

import pytest
import torch

from lmd_toolkit.apis import init_model
from lmd_toolkit.models.projectors import KLVAEProjector
from lmd_toolkit.models.projectors.checkpoint import load_projector_weights
from lmd_toolkit.utils.fileio import UnreadableFileError
from lmd_toolkit.utils.state_dict import StateDictMismatchError
from reliability_helpers import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(ROOT, 'tests', 'data', 'tiny_lmd_photos.py')
# The tiny model is 48 wide; this one is 96 wide (3 heads either way).
WIDE = {
    'model.backbone.arch.embed_dims': 96,
    'model.neck.embed_dims': 96,
}
KL_OPTIONS = {
    'model.projector':
    dict(type='KLVAEProjector', preset='micro-f4', _delete_=True),
    'model.backbone.in_channels': 4,
    'model.backbone.latent_size': 16,
    'model.backbone.patch_size': 2,
    'model.neck.patch_size': 2,
    'model.neck.in_channels': 4,
    'model.head.patch_size': 2,
}


test_tool = load_tool('tools/test.py', 'lmd_tools_test')
eval_recon = load_tool('tools/analysis_tools/eval_reconstruction.py',
                       'lmd_tools_eval_reconstruction')


def run(monkeypatch, module, *args):
    monkeypatch.setattr(sys, 'argv', ['tool.py', *args])
    return module.main()


def truncate(src, dst, keep=0.5):
    with open(src, 'rb') as f:
        data = f.read()
    with open(dst, 'wb') as f:
        f.write(data[:int(len(data) * keep)])
    return str(dst)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """A training-style checkpoint of the tiny config and one of a model
    twice as wide."""
    folder = tmp_path_factory.mktemp('ckpts')
    torch.manual_seed(0)
    tiny = init_model(TINY_CONFIG)
    torch.manual_seed(0)
    wide = init_model(TINY_CONFIG, cfg_options=dict(WIDE))
    paths = {}
    for name, model in (('tiny', tiny), ('wide', wide)):
        paths[name] = str(folder / f'{name}.pth')
        torch.save(dict(meta=dict(iter=8), state_dict=model.state_dict()),
                   paths[name])
    return paths


def assert_names_width_mismatch(err, path):
    message = str(err.value)
    assert repr(path) in message and 'Evaluation checkpoint' in message
    # mis-shaped keys with both shapes: model 48 wide, file 96 wide
    assert re.search(r'backbone\.[\w.]+ \(model \([^)]*48[^)]*\), '
                     r'file \([^)]*96[^)]*\)\)', message), message
    assert 'key(s) with another shape' in message


def test_tools_test_refuses_another_width_and_keeps_results(
        monkeypatch, checkpoints, tmp_path):
    work_dir = str(tmp_path / 'work')
    out = osp.join(work_dir, 'test_results.json')
    run(monkeypatch, test_tool, TINY_CONFIG, checkpoints['tiny'],
        '--work-dir', work_dir)
    with open(out, 'rb') as f:
        before = f.read()
    assert json.loads(before)['metrics']  # numbers for the right one
    with pytest.raises(StateDictMismatchError) as err:
        run(monkeypatch, test_tool, TINY_CONFIG, checkpoints['wide'],
            '--work-dir', work_dir)
    assert_names_width_mismatch(err, checkpoints['wide'])
    with open(out, 'rb') as f:
        assert f.read() == before  # the earlier results are untouched
    # and a fresh work dir gets no results at all
    fresh = str(tmp_path / 'fresh')
    with pytest.raises(StateDictMismatchError):
        run(monkeypatch, test_tool, TINY_CONFIG, checkpoints['wide'],
            '--work-dir', fresh)
    assert not osp.exists(osp.join(fresh, 'test_results.json'))


def test_tools_test_metrics_equal_mmengine_loading(monkeypatch, checkpoints,
                                                   tmp_path):
    """The strict path evaluates exactly what mmengine's own load_from
    evaluates with the right checkpoint."""
    from mmengine.runner import Runner

    from lmd_toolkit.utils.launch import load_config
    calls = []
    real_load = torch.load

    def recording_load(f, *args, **kwargs):
        calls.append((str(f), kwargs.get('weights_only')))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, 'load', recording_load)
    run(monkeypatch, test_tool, TINY_CONFIG, checkpoints['tiny'],
        '--work-dir', str(tmp_path / 'ours'))
    # read once, by the safe loader (not again by mmengine's load_from)
    assert [c for c in calls if c[0] == checkpoints['tiny']] == [
        (checkpoints['tiny'], True)]
    monkeypatch.setattr(torch, 'load', real_load)
    with open(tmp_path / 'ours' / 'test_results.json') as f:
        ours = json.load(f)['metrics']
    cfg = load_config(TINY_CONFIG, work_dir=str(tmp_path / 'mmengine'))
    cfg.load_from = checkpoints['tiny']
    theirs = Runner.from_cfg(cfg).test()
    assert ours and ours == {k: float(v) for k, v in theirs.items()}


def test_tools_test_never_leaves_a_partial_results_file(
        monkeypatch, checkpoints, tmp_path):
    work_dir = str(tmp_path / 'work')
    out = osp.join(work_dir, 'test_results.json')
    os.makedirs(work_dir)
    with open(out, 'w') as f:
        f.write('{"metrics": {"earlier": 1.0}}')

    def dump_then_fail(obj, f, **kwargs):
        f.write('{"config": "half')
        raise OSError('No space left on device')

    monkeypatch.setattr(test_tool.json, 'dump', dump_then_fail)
    with pytest.raises(OSError, match='No space left'):
        run(monkeypatch, test_tool, TINY_CONFIG, checkpoints['tiny'],
            '--work-dir', work_dir)
    with open(out) as f:
        assert f.read() == '{"metrics": {"earlier": 1.0}}'
    assert [n for n in os.listdir(work_dir) if '.tmp' in n] == []


def test_tools_test_truncated_checkpoint(monkeypatch, checkpoints, tmp_path):
    bad = truncate(checkpoints['tiny'], tmp_path / 'iter_8.pth')
    work_dir = str(tmp_path / 'work')
    with pytest.raises(UnreadableFileError) as err:
        run(monkeypatch, test_tool, TINY_CONFIG, bad, '--work-dir', work_dir)
    assert err.value.path == bad and err.value.role == 'Evaluation checkpoint'
    assert 'truncated' in str(err.value) and bad in str(err.value)
    assert not osp.exists(work_dir)  # refused before the Runner was built


def test_eval_reconstruction_refuses_another_width(monkeypatch, checkpoints,
                                                   tmp_path, capsys):
    # the right checkpoint: a table and its JSON
    ckpt = str(tmp_path / 'tiny.pth')
    with open(checkpoints['tiny'], 'rb') as src, open(ckpt, 'wb') as dst:
        dst.write(src.read())
    run(monkeypatch, eval_recon, TINY_CONFIG, ckpt, '--mask-ratios', '0.5')
    with open(ckpt + '.recon_eval.json') as f:
        assert json.load(f)['num_images'] == 8
    # the wrong one: no number at all, no JSON, an earlier JSON kept
    wide = str(tmp_path / 'wide.pth')
    with open(checkpoints['wide'], 'rb') as src, open(wide, 'wb') as dst:
        dst.write(src.read())
    with open(wide + '.recon_eval.json', 'w') as f:
        f.write('earlier results')
    capsys.readouterr()
    with pytest.raises(StateDictMismatchError) as err:
        run(monkeypatch, eval_recon, TINY_CONFIG, wide, '--mask-ratios',
            '0.5')
    assert_names_width_mismatch(err, wide)
    assert 'PSNR' not in capsys.readouterr().out
    with open(wide + '.recon_eval.json') as f:
        assert f.read() == 'earlier results'


def test_init_model_is_strict_and_safe(checkpoints, tmp_path):
    with pytest.raises(StateDictMismatchError) as err:
        init_model(TINY_CONFIG, checkpoints['wide'])
    assert_names_width_mismatch(err, checkpoints['wide'])
    # a checkpoint with a key the model lacks, and one missing a key
    state = torch.load(checkpoints['tiny'], weights_only=True)['state_dict']
    extra = str(tmp_path / 'extra.pth')
    torch.save(dict(state_dict=dict(state, **{'neck.bogus': torch.zeros(1)})),
               extra)
    with pytest.raises(StateDictMismatchError,
                       match=r'1 unexpected key\(s\) in the file: neck.bogus'):
        init_model(TINY_CONFIG, extra)
    missing = str(tmp_path / 'missing.pth')
    torch.save({k: v for k, v in state.items() if k != 'backbone.cls_token'},
               missing)
    with pytest.raises(StateDictMismatchError,
                       match=r'missing from the file: backbone.cls_token'):
        init_model(TINY_CONFIG, missing)
    bad = truncate(checkpoints['tiny'], tmp_path / 'half.pth')
    with pytest.raises(UnreadableFileError, match='half.pth.*truncated'):
        init_model(TINY_CONFIG, bad)
    # the right one loads bit for bit
    model = init_model(TINY_CONFIG, checkpoints['tiny'])
    assert all(torch.equal(v, state[k])
               for k, v in model.state_dict().items())


def test_frozen_projector_from_its_own_file(tmp_path):
    """The one legit partial checkpoint: no projector.* keys at all, the
    projector loading its own checkpoint; partly missing is refused."""
    torch.manual_seed(1)
    projector_file = str(tmp_path / 'kl.pth')
    projector_state = KLVAEProjector(preset='micro-f4').state_dict()
    torch.save(projector_state, projector_file)
    options = dict(KL_OPTIONS)
    options['model.projector'] = dict(options['model.projector'],
                                      checkpoint=projector_file)
    torch.manual_seed(2)
    trained = init_model(TINY_CONFIG, cfg_options=dict(options))
    full = trained.state_dict()
    assert any(k.startswith('projector.') for k in full)  # saved with it
    without = str(tmp_path / 'no_projector.pth')
    torch.save(dict(state_dict={k: v for k, v in full.items()
                                if not k.startswith('projector.')}), without)
    model = init_model(TINY_CONFIG, without, cfg_options=dict(options))
    loaded = model.projector.state_dict()
    assert all(torch.equal(loaded[k], projector_state[k])
               for k in projector_state)
    assert torch.equal(model.backbone.cls_token, trained.backbone.cls_token)
    partial = str(tmp_path / 'partial.pth')
    key = next(k for k in full if k.startswith('projector.'))
    torch.save(dict(state_dict={k: v for k, v in full.items() if k != key}),
               partial)
    with pytest.raises(StateDictMismatchError, match=f'missing.*{key}'):
        init_model(TINY_CONFIG, partial, cfg_options=dict(options))


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_truncated_projector_weights(tmp_path, suffix):
    state = KLVAEProjector(preset='micro-f4').state_dict()
    whole = str(tmp_path / f'whole{suffix}')
    if suffix == '.safetensors':
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, whole)
    else:
        torch.save(state, whole)
    load_projector_weights(KLVAEProjector(preset='micro-f4'), whole)
    for keep in (0.5, 0.002):  # data cut off; header cut off
        bad = truncate(whole, tmp_path / f'half{suffix}', keep)
        with pytest.raises(UnreadableFileError) as err:
            load_projector_weights(KLVAEProjector(preset='micro-f4'), bad)
        assert err.value.path == bad
        assert err.value.role == 'Projector weights'
        assert 'truncated' in str(err.value)
        assert 'model.projector.checkpoint' in str(err.value)  # the fix


def test_truncated_diffusers_folder_and_converter(tmp_path, capsys):
    from safetensors.torch import save_file
    folder = tmp_path / 'vae'
    folder.mkdir()
    state = KLVAEProjector(preset='micro-f4').state_dict()
    weights = str(folder / 'diffusion_pytorch_model.safetensors')
    save_file({k: v.contiguous() for k, v in state.items()}, weights)
    truncate(weights, weights)
    with pytest.raises(UnreadableFileError) as err:
        load_projector_weights(KLVAEProjector(preset='micro-f4'), str(folder))
    assert err.value.path == weights
    converter = load_tool('tools/model_converters/lmd_to_mmpretrain.py',
                          'lmd_to_mmpretrain_faults')
    src = str(tmp_path / 'lmd.pth')
    torch.save(dict(state_dict=state), src)
    truncate(src, src)
    dst = str(tmp_path / 'cls.pth')
    assert converter.main([src, dst]) == 1
    message = capsys.readouterr().err
    assert 'LMD pretraining checkpoint' in message and src in message
    assert not osp.exists(dst)


def test_reconstruct_tool_never_leaves_partial_pngs(monkeypatch, checkpoints,
                                                    tmp_path):
    """A PNG encoder that fails half-way (a full disk) leaves every earlier
    output byte for byte, and no temporary file."""
    from PIL import Image
    reconstruct = load_tool('tools/reconstruct.py', 'lmd_reconstruct_faults')
    picture = str(tmp_path / 'a.png')
    Image.new('RGB', (64, 64), (200, 30, 90)).save(picture)
    out = tmp_path / 'out'
    args = ['reconstruct.py', TINY_CONFIG, checkpoints['tiny'], picture,
            '--out', str(out)]
    monkeypatch.setattr(sys, 'argv', args)
    reconstruct.main()
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    assert sorted(before) == ['0000_a.png', 'grid.png']

    def half_written(self, fp, *a, **kw):
        fp.write(b'\x89PNG\r\n')
        raise OSError('No space left on device')

    monkeypatch.setattr(Image.Image, 'save', half_written)
    monkeypatch.setattr(sys, 'argv', args + ['--force'])
    with pytest.raises(OSError, match='No space left'):
        reconstruct.main()
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before
