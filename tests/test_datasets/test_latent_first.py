"""Latent-first training: a LatentCacheDataset that names its image dataset
is encoded once, at the start of training, with the model's own projector,
and reused by later runs and by other configs with the same projector and
data."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from lmd_toolkit.apis.pipelines import set_budget
from lmd_toolkit.datasets.latent_cache import (LatentCacheDataset,
                                               LatentCacheMismatchError,
                                               build_latent_cache,
                                               read_manifest)
from lmd_toolkit.models.projectors import KLVAEProjector
from lmd_toolkit.registry import DATASETS, MODELS
from lmd_toolkit.utils.launch import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'tests', 'data', 'tiny_lmd_klvae_photos.py')
IMAGES = dict(type='EmbeddedPhotos', split='train', crop_size=32,
              num_crops=6,
              pipeline=[dict(type='mmpretrain.RandomFlip', prob=0.5),
                        dict(type='mmpretrain.PackInputs')])


pytestmark = pytest.mark.usefixtures('single_thread')


def projector(seed=0, **kwargs):
    torch.manual_seed(seed)
    p = MODELS.build(dict(type='KLVAEProjector', preset='micro-f4', **kwargs))
    p.init_weights()
    return p


def preprocessor():
    return MODELS.build(dict(type='LMDDataPreprocessor'))


def latent_dataset(root, **kwargs):
    args = dict(cache_dir=str(root), dataset=IMAGES, num_views=2,
                batch_size=4, dtype='fp32',
                allow_random_projector=True)  # seeded random projectors
    args.update(kwargs)
    return LatentCacheDataset(**args)


def tiny_cfg(work_dir, cache_root, **options):
    cfg = load_config(TINY, work_dir=str(work_dir))
    cfg.train_dataloader.dataset.cache_dir = str(cache_root)
    cfg.merge_from_dict(options)
    return cfg


def train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_length_is_known_before_the_cache_and_items_wait_for_it(tmp_path):
    ds = latent_dataset(tmp_path, views='all')
    assert ds.needs_cache and len(ds) == 12  # 6 crops x 2 views
    assert len(latent_dataset(tmp_path, views='random')) == 6
    with pytest.raises(RuntimeError, match='LatentCacheHook'):
        ds[0]
    assert not os.listdir(tmp_path)  # nothing written before prepare


def test_prepare_encodes_seeded_views_and_names_the_folder(tmp_path):
    p = projector()
    ds = latent_dataset(tmp_path / 'root', views='all')
    ds.prepare(p, preprocessor())
    folder = ds.cache_dir_for(p)
    assert ds.cache_dir == folder and osp.dirname(folder) == str(
        tmp_path / 'root')
    assert osp.basename(folder).startswith('EmbeddedPhotos_')
    # the same bytes as a cache made by hand of the same request
    images = DATASETS.build(IMAGES)
    build_latent_cache(p, images, str(tmp_path / 'by_hand'), preprocessor(),
                       IMAGES, num_views=2, dtype='fp32', batch_size=4,
                       allow_random_projector=True)
    a = np.load(osp.join(folder, 'latents.npy'))
    b = np.load(str(tmp_path / 'by_hand' / 'latents.npy'))
    assert a.shape == (12, 4, 8, 8) and np.array_equal(a, b)
    item = ds[3]  # view 1 of crop 1
    assert item['data_samples'].metainfo['input_type'] == 'latent'
    assert torch.equal(item['inputs'], torch.from_numpy(a[3]))
    ds.prepare(p, preprocessor())  # bound already: nothing happens


def test_the_folder_depends_on_projector_and_data_only(tmp_path):
    p = projector()
    base = latent_dataset(tmp_path).cache_dir_for(p)
    assert latent_dataset(tmp_path, views='random').cache_dir_for(p) == base
    assert latent_dataset(tmp_path, num_workers=2).cache_dir_for(p) == base
    other_data = dict(IMAGES, pipeline=[dict(type='mmpretrain.PackInputs')])
    different = [
        latent_dataset(tmp_path, num_views=3).cache_dir_for(p),
        latent_dataset(tmp_path, dtype='fp16').cache_dir_for(p),
        latent_dataset(tmp_path, seed=1).cache_dir_for(p),
        latent_dataset(tmp_path, dataset=other_data).cache_dir_for(p),
        latent_dataset(tmp_path).cache_dir_for(projector(scale_factor=0.5)),
        latent_dataset(tmp_path).cache_dir_for(
            projector(sample_posterior=True)),
    ]
    assert base not in different and len(set(different)) == len(different)


def test_configs_with_the_same_projector_and_data_share_a_cache(tmp_path):
    folders = set()
    for name in ('lmd_vit-tiny_klvae_photos_cs.py',
                 'lmd_unet_klvae_photos_cs.py'):
        cfg = load_config(osp.join(ROOT, 'configs', name),
                          dict(model=dict(projector=dict(checkpoint=None))))
        p = MODELS.build(cfg.model.projector)
        folders.add(DATASETS.build(
            cfg.train_dataloader.dataset).cache_dir_for(p))
    assert len(folders) == 1


def test_identity_projector_never_caches(tmp_path):
    ds = latent_dataset(tmp_path, views='random')
    ds.prepare(MODELS.build(dict(type='IdentityProjector')), preprocessor())
    assert ds.encode_on_the_fly and not ds.needs_cache
    assert not os.listdir(tmp_path)
    item = ds[2]
    assert item['inputs'].dtype == torch.uint8
    assert item['inputs'].shape == (3, 32, 32)


def test_encode_on_the_fly_serves_the_images(tmp_path):
    ds = latent_dataset(tmp_path, views='all', encode_on_the_fly=True)
    assert len(ds) == 12 and not ds.needs_cache
    ds.prepare(projector(), preprocessor())
    assert not os.listdir(tmp_path)
    # item 2 * i + v is (an augmentation of) crop i, as in the cache
    crop = ds.image_dataset[2]['inputs']
    item = ds[4]['inputs']  # one draw of the random flip
    assert item.shape == crop.shape
    assert any(torch.equal(item, c) for c in (crop, crop.flip(-1)))
    with pytest.raises(ValueError, match='needs the image dataset'):
        LatentCacheDataset(cache_dir=str(tmp_path), encode_on_the_fly=True)


def test_interrupted_build_resumes_to_the_same_bytes(tmp_path):
    p = projector(scale_factor='auto')
    ds = latent_dataset(tmp_path / 'a', views='all')
    folder = ds.cache_dir_for(p)
    m = build_latent_cache(p, DATASETS.build(IMAGES), folder, preprocessor(),
                           IMAGES, num_views=2, dtype='fp32', batch_size=4,
                           max_chunks=2, allow_random_projector=True)
    assert m['state'] == 'in_progress' and m['num_done'] == 8
    scale = float(p.scale_factor)
    p2 = projector(scale_factor='auto')  # a new run: not calibrated yet
    ds.prepare(p2, preprocessor())
    assert read_manifest(folder)['state'] == 'complete'
    assert float(p2.scale_factor) == pytest.approx(scale)
    whole = latent_dataset(tmp_path / 'b', views='all')
    whole.prepare(projector(scale_factor='auto'), preprocessor())
    assert np.array_equal(np.load(osp.join(folder, 'latents.npy')),
                          np.load(osp.join(whole.cache_dir, 'latents.npy')))


def test_model_refuses_a_cache_of_another_projector(tmp_path):
    a = projector(seed=0)
    ds = latent_dataset(tmp_path)
    ds.prepare(a, preprocessor())
    path = str(tmp_path / 'b.pth')
    torch.save(projector(seed=1).state_dict(), path)
    model = MODELS.build(dict(
        type='LatentMaskingDiffusion',
        projector=dict(type='KLVAEProjector', preset='micro-f4',
                       checkpoint=path),
        backbone=dict(type='LMDViT',
                      arch=dict(embed_dims=32, num_layers=1, num_heads=2),
                      in_channels=4, latent_size=8, patch_size=2),
        neck=dict(type='LMDDecoder', num_patches=16, patch_size=2,
                  in_channels=4, embed_dims=32, decoder_embed_dims=16,
                  decoder_depth=1, decoder_num_heads=2),
        head=dict(type='LatentReconstructionHead', patch_size=2)))
    model.init_weights()
    from mmengine.dataset import default_collate
    data = model.data_preprocessor(default_collate([ds[0], ds[1]]), True)
    own = model.projector.fingerprint()['checkpoint_sha256']
    with pytest.raises(LatentCacheMismatchError) as info:
        model(**data, mode='loss')
    text = str(info.value)
    assert 'checkpoint_sha256: latent cache has None' in text
    assert 'latent cache fingerprint: type=' in text
    assert f"projector fingerprint: type='KLVAEProjector'" in text
    assert own in text


def test_training_builds_then_a_second_run_reuses(tmp_path, monkeypatch):
    cache = tmp_path / 'cache'
    # workers started before the cache existed are restarted by the hook
    first = train(tiny_cfg(tmp_path / 'a', cache,
                           train_dataloader=dict(num_workers=1,
                                                 persistent_workers=True)))
    folders = os.listdir(cache)
    assert len(folders) == 1
    folder = osp.join(cache, folders[0])
    manifest = read_manifest(folder)
    assert manifest['state'] == 'complete' and manifest['num_rows'] == 48
    assert manifest['dtype'] == 'float16' and manifest['encode_seconds'] > 0
    # the 'auto' scale factor was calibrated once, by the cache
    assert float(first.model.projector.scale_factor) == pytest.approx(
        manifest['projector']['scale_factor'])
    record = json.loads((tmp_path / 'a' / 'latent_cache.json').read_text())
    assert record['caches'][0]['cache_dir'] == folder

    batches = []  # batch sizes the projector encodes in the second run
    encode = KLVAEProjector._encode
    monkeypatch.setattr(KLVAEProjector, '_encode',
                        lambda self, x: batches.append(len(x)) or
                        encode(self, x))
    second = train(tiny_cfg(tmp_path / 'b', cache))
    assert os.listdir(cache) == folders
    assert read_manifest(folder)['updated'] == manifest['updated']
    assert 4 not in batches  # no training batch (of 4) was encoded ...
    assert 8 in batches  # ... only validation images (batches of 8)
    assert float(second.model.projector.scale_factor) == pytest.approx(
        manifest['projector']['scale_factor'])


def test_on_the_fly_switch_trains_without_a_cache(tmp_path):
    cache = tmp_path / 'cache'
    cfg = tiny_cfg(tmp_path / 'w', cache, train_dataloader=dict(
        dataset=dict(encode_on_the_fly=True)))
    set_budget(cfg, 2)
    runner = train(cfg)
    assert not cache.exists()
    assert runner.model.projector.is_calibrated()  # by the first batch

