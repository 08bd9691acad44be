"""The latent cache: writing, resuming, reading, and training LMD from it
with the same loss as encoding on the fly (micro-f4 KL-VAE, 32 px crops)."""
import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate

import lmd_toolkit.datasets.latent_cache as latent_cache
from lmd_toolkit.datasets import EmbeddedPhotos, LatentCacheDataset
from lmd_toolkit.datasets.latent_cache import (LatentCacheMismatchError,
                                               load_view, write_latent_cache)
from lmd_toolkit.models.data_preprocessors import LMDDataPreprocessor
from lmd_toolkit.registry import MODELS
from lmd_toolkit.utils import register_all_modules
from lmd_toolkit.version import __version__

register_all_modules(init_default_scope=False)

NUM_CROPS, VIEWS, CHUNK = 6, 2, 4  # 12 rows: chunks of 4, 4, 4
PIPELINE = [
    dict(type='mmpretrain.RandomFlip', prob=0.5),
    dict(type='mmpretrain.PackInputs')
]
DATASET = dict(type='EmbeddedPhotos', split='train', crop_size=32,
               num_crops=NUM_CROPS, pipeline=PIPELINE)


pytestmark = pytest.mark.usefixtures('single_thread')


def save_weights(path, seed):
    torch.manual_seed(seed)
    projector = MODELS.build(dict(type='KLVAEProjector', preset='micro-f4'))
    torch.save(projector.state_dict(), path)
    return str(path)


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp('weights')
    return (save_weights(folder / 'a.pth', 0),
            save_weights(folder / 'b.pth', 1))


def projector_cfg(checkpoint, **kwargs):
    cfg = dict(type='KLVAEProjector', preset='micro-f4',
               checkpoint=checkpoint)
    cfg.update(kwargs)
    return cfg


def write(out, checkpoint, **kwargs):
    args = dict(num_views=VIEWS, dtype='fp32', batch_size=CHUNK)
    args.update(kwargs)
    return write_latent_cache(projector_cfg(checkpoint), DATASET, str(out),
                              **args)


@pytest.fixture(scope='module')
def cache32(weights, tmp_path_factory):
    out = tmp_path_factory.mktemp('cache') / 'fp32'
    write(out, weights[0])
    return str(out)


def build_lmd(checkpoint, **projector_kwargs):
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='LatentMaskingDiffusion',
             projector=projector_cfg(checkpoint, **projector_kwargs),
             backbone=dict(type='LMDViT',
                           arch=dict(embed_dims=32, num_layers=1,
                                     num_heads=2),
                           in_channels=4, latent_size=8, patch_size=2),
             neck=dict(type='LMDDecoder', num_patches=16, patch_size=2,
                       in_channels=4, embed_dims=32, decoder_embed_dims=16,
                       decoder_depth=1, decoder_num_heads=2),
             head=dict(type='LatentReconstructionHead', patch_size=2)))
    model.init_weights()
    return model


def cache_batch(dataset, indices):
    return default_collate([dataset[i] for i in indices])


def image_batch(indices, view=0):
    dataset = EmbeddedPhotos(**{k: v for k, v in DATASET.items()
                                if k != 'type'})
    return default_collate(
        [load_view(dataset, i, view, seed=0) for i in indices])


def loss_of(model, batch):
    data = model.data_preprocessor(batch, True)
    torch.manual_seed(123)  # the same masks for both batches
    return model(**data, mode='loss')['loss']


def test_manifest_contents(cache32, weights):
    with open(osp.join(cache32, 'manifest.json')) as f:
        m = json.load(f)
    with open(weights[0], 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    assert m['state'] == 'complete' and m['num_done'] == m['num_rows'] == 12
    assert (m['num_images'], m['num_views']) == (NUM_CROPS, VIEWS)
    assert m['latent_shape'] == [4, 8, 8] and m['image_size'] == [32, 32]
    assert m['dtype'] == 'float32'
    p = m['projector']
    assert (p['type'], p['preset']) == ('KLVAEProjector', 'micro-f4')
    assert p['checkpoint'] == weights[0] and p['checkpoint_sha256'] == sha
    assert p['scale_factor'] == 1.0 and p['scale_factor_mode'] == 'fixed'
    assert p['options'] == dict(sample_posterior=False)
    assert m['dataset'] == dict(
        type='EmbeddedPhotos',
        args=dict(split='train', crop_size=32, num_crops=NUM_CROPS))
    assert m['pipeline'] == PIPELINE
    assert m['toolkit_version'] == __version__ and m['created']
    array = np.load(osp.join(cache32, 'latents.npy'), mmap_mode='r')
    assert array.shape == (12, 4, 8, 8) and array.dtype == np.float32


def test_identity_projector_has_no_checkpoint_hash(tmp_path):
    m = write_latent_cache(dict(type='IdentityProjector', scale_factor=0.5),
                           DATASET, str(tmp_path / 'id'), num_views=1,
                           dtype='fp32', batch_size=8)
    assert m['projector']['checkpoint_sha256'] is None
    assert m['projector']['scale_factor'] == 0.5
    assert m['latent_shape'] == [3, 32, 32]
    z = np.load(tmp_path / 'id' / 'latents.npy')
    image = image_batch([0])['inputs'][0].float() / 127.5 - 1
    np.testing.assert_allclose(z[0], 0.5 * image.numpy(), atol=1e-6)


def test_rows_are_seeded_views(cache32, weights):
    array = np.load(osp.join(cache32, 'latents.npy'))
    projector = MODELS.build(projector_cfg(weights[0]))
    projector.init_weights()
    pre = LMDDataPreprocessor()
    for view in range(VIEWS):
        images = pre(image_batch([0, 3], view))['inputs']
        z = projector.encode(images).numpy()
        np.testing.assert_allclose(array[[0 * VIEWS + view,
                                          3 * VIEWS + view]], z, atol=1e-5)
    # The random flip makes views differ for some crop.
    assert not np.array_equal(array[0::2], array[1::2])


@pytest.mark.parametrize('dtype,tol', [('fp32', 1e-5), ('fp16', 2e-3)])
def test_loss_from_cache_equals_on_the_fly(cache32, weights, tmp_path, dtype,
                                           tol):
    cache = cache32
    if dtype == 'fp16':
        cache = str(tmp_path / 'fp16')
        write(cache, weights[0], dtype='fp16')
    model = build_lmd(weights[0])
    indices = [0, 2, 5]
    cached = cache_batch(LatentCacheDataset(cache, views=0), indices)
    assert cached['inputs'].dtype == torch.float32
    assert [s.view for s in cached['data_samples']] == [0, 0, 0]
    assert [s.source_idx for s in cached['data_samples']] == indices
    from_cache = loss_of(model, cached)
    on_the_fly = loss_of(model, image_batch(indices))
    assert torch.isfinite(from_cache)
    assert from_cache.item() == pytest.approx(on_the_fly.item(), rel=tol)


def test_train_step_and_predict_from_cache(cache32, weights):
    model = build_lmd(weights[0])
    dataset = LatentCacheDataset(cache32)
    batch = cache_batch(dataset, [0, 1, 2, 3])
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    from mmengine.optim import OptimWrapper
    log = model.train_step(batch, OptimWrapper(optim))
    assert torch.isfinite(log['loss'])
    out = model.val_step(batch)
    assert len(out) == 4
    latent = batch['inputs'][0:1]
    gt = (model.projector.decode(latent)[0] + 1) * 127.5
    torch.testing.assert_close(out[0]['gt_img'], gt.clamp(0, 255),
                               atol=1e-2, rtol=0)  # batch of 4 vs of 1
    assert out[0]['pred_img'].shape == (3, 32, 32)
    torch.testing.assert_close(out[0]['gt_latent'], latent[0])


def test_dataset_views_flip_and_errors(cache32):
    array = np.load(osp.join(cache32, 'latents.npy'))
    assert len(LatentCacheDataset(cache32)) == NUM_CROPS * VIEWS
    one = LatentCacheDataset(cache32, views=1)
    assert len(one) == NUM_CROPS
    np.testing.assert_array_equal(one[2]['inputs'].numpy(), array[5])
    rand = LatentCacheDataset(cache32, views='random')
    item = rand[4]
    view = item['data_samples'].view
    np.testing.assert_array_equal(item['inputs'].numpy(),
                                  array[4 * VIEWS + view])
    flipped = LatentCacheDataset(cache32, views=0, flip_prob=1.0)[1]
    assert flipped['data_samples'].flip
    np.testing.assert_array_equal(flipped['inputs'].numpy(),
                                  array[2][:, :, ::-1])
    meta = item['data_samples'].metainfo
    assert meta['input_type'] == 'latent' and meta['sample_idx'] == 4
    with pytest.raises(ValueError, match='views must be'):
        LatentCacheDataset(cache32, views=VIEWS)
    with pytest.raises(FileNotFoundError, match='cache_latents.py'):
        LatentCacheDataset(osp.dirname(cache32) + '/missing')


def test_preprocessor_passes_latents_and_rejects_mixed_batches(cache32):
    batch = cache_batch(LatentCacheDataset(cache32), [0, 1])
    out = LMDDataPreprocessor(to_rgb=True)(batch)
    torch.testing.assert_close(out['inputs'], batch['inputs'])
    mixed = [batch['data_samples'][0], dict(input_type=None)]
    with pytest.raises(ValueError, match='mixes cached latents'):
        LMDDataPreprocessor()(dict(inputs=batch['inputs'],
                                   data_samples=mixed))


@pytest.mark.parametrize('kwargs,field,cache_value,model_value', [
    (dict(preset='micro-f4', checkpoint=None), 'checkpoint_sha256', None,
     None),
    (dict(scale_factor=0.5), 'scale_factor', '1.0', '0.5'),
    (dict(sample_posterior=True), 'options', 'False', 'True'),
])
def test_mismatched_projector_is_refused(cache32, weights, kwargs, field,
                                         cache_value, model_value):
    checkpoint = kwargs.pop('checkpoint', weights[0])
    model = build_lmd(checkpoint, **kwargs)
    batch = cache_batch(LatentCacheDataset(cache32), [0, 1])
    with pytest.raises(LatentCacheMismatchError) as err:
        loss_of(model, batch)
    message = str(err.value)
    assert field in message
    if cache_value is not None:
        assert cache_value in message and model_value in message


def test_other_checkpoint_and_preset_are_refused(cache32, weights):
    with open(weights[1], 'rb') as f:
        sha_b = hashlib.sha256(f.read()).hexdigest()
    source = LatentCacheDataset(cache32).manifest['projector']
    model = build_lmd(weights[1])
    batch = cache_batch(LatentCacheDataset(cache32), [0])
    with pytest.raises(LatentCacheMismatchError,
                       match=f"{source['checkpoint_sha256']}.*{sha_b}"):
        loss_of(model, batch)
    # Another preset with the same latent channels (tiny-f8: f = 8).
    other = dict(source, preset='tiny-f8')
    batch['data_samples'][0].set_metainfo(dict(latent_source=other))
    with pytest.raises(LatentCacheMismatchError,
                       match="preset: latent cache has 'tiny-f8'.*"
                       "'micro-f4'"):
        loss_of(build_lmd(weights[0]), batch)


def test_resume_after_interruption_equals_uninterrupted(cache32, weights,
                                                       tmp_path):
    out = tmp_path / 'resumed'
    m = write(out, weights[0], max_chunks=1)
    assert m['state'] == 'in_progress' and m['num_done'] == CHUNK
    with open(out / 'manifest.json') as f:
        assert json.load(f)['num_done'] == CHUNK
    with pytest.raises(ValueError, match='incomplete'):
        LatentCacheDataset(str(out))
    m = write(out, weights[0], max_chunks=1)  # one more chunk
    assert m['num_done'] == 2 * CHUNK
    m = write(out, weights[0])
    assert m['state'] == 'complete' and m['num_done'] == 12
    np.testing.assert_array_equal(
        np.load(out / 'latents.npy'),
        np.load(osp.join(cache32, 'latents.npy')))


def test_complete_cache_is_not_recomputed(cache32, weights, monkeypatch):
    path = osp.join(cache32, 'latents.npy')
    before = os.stat(path).st_mtime_ns, open(
        osp.join(cache32, 'manifest.json')).read()
    messages = []
    monkeypatch.setattr(latent_cache, 'print_log',
                        lambda msg, **kw: messages.append(msg))
    m = write(cache32, weights[0])
    assert m['state'] == 'complete'
    assert any('nothing to do' in msg for msg in messages)
    after = os.stat(path).st_mtime_ns, open(
        osp.join(cache32, 'manifest.json')).read()
    assert after == before


def test_other_request_on_existing_folder_is_refused(cache32, weights,
                                                     tmp_path):
    manifest = open(osp.join(cache32, 'manifest.json')).read()
    with pytest.raises(LatentCacheMismatchError, match='num_views'):
        write(cache32, weights[0], num_views=3)
    with pytest.raises(LatentCacheMismatchError, match='checkpoint_sha256'):
        write(cache32, weights[1])
    assert open(osp.join(cache32, 'manifest.json')).read() == manifest
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='not a latent cache'):
        write(user, weights[0])
    assert os.listdir(user) == ['notes.txt']


def test_fp16_halves_the_file(cache32, weights, tmp_path):
    write(tmp_path / 'half', weights[0], dtype='fp16')
    full = np.load(osp.join(cache32, 'latents.npy'))
    half = np.load(tmp_path / 'half' / 'latents.npy')
    assert half.dtype == np.float16
    header = 128  # .npy header of both files
    size = [os.path.getsize(osp.join(cache32, 'latents.npy')),
            os.path.getsize(tmp_path / 'half' / 'latents.npy')]
    assert size[0] - header == 2 * (size[1] - header)
    np.testing.assert_allclose(half.astype(np.float32), full, rtol=1e-3,
                               atol=1e-3 * np.abs(full).max())


def test_auto_scale_factor_is_recorded_and_adopted(weights, tmp_path):
    out = str(tmp_path / 'auto')
    m = write_latent_cache(projector_cfg(weights[0], scale_factor='auto'),
                           DATASET, out, num_views=1, dtype='fp32',
                           batch_size=CHUNK)
    scale = m['projector']['scale_factor']
    assert m['projector']['scale_factor_mode'] == 'auto' and scale > 0
    model = build_lmd(weights[0], scale_factor='auto')
    assert not model.projector.is_calibrated()
    loss_of(model, cache_batch(LatentCacheDataset(out), [0, 1]))
    assert float(model.projector.scale_factor) == pytest.approx(scale)
