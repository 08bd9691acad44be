"""Faults of the data layer end in one error naming the file, its role and
the fix, and lose nothing: a full disk, NaN latents, damaged cache files,
bad images, a projector without weights (docs/en/reliability.md)."""
import errno
import hashlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

import lmd_toolkit.datasets.latent_cache as latent_cache
from lmd_toolkit.datasets import ImageFolderDataset, LatentCacheDataset
from lmd_toolkit.datasets.latent_cache import (LatentCacheSpaceError,
                                               NonFiniteLatentError,
                                               RandomProjectorError,
                                               build_latent_cache,
                                               check_latent_cache_config)
from lmd_toolkit.datasets.transforms import ImageTooSmallError
from lmd_toolkit.engine.hooks.latent_cache_hook import LatentCacheHook
from reliability_helpers import load_tool
from lmd_toolkit.registry import DATASETS, MODELS
from lmd_toolkit.utils import register_all_modules
from lmd_toolkit.utils.fileio import UnreadableFileError

register_all_modules(init_default_scope=False)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
IMAGES = dict(type='EmbeddedPhotos', split='train', crop_size=32,
              num_crops=6, pipeline=[dict(type='mmpretrain.PackInputs')])
VIEWS, CHUNK = 2, 4  # 12 rows in chunks of 4, 4, 4


pytestmark = pytest.mark.usefixtures('single_thread')


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """A saved micro-f4 KL-VAE (a real tiny projector with a checkpoint)."""
    torch.manual_seed(0)
    projector = MODELS.build(dict(type='KLVAEProjector', preset='micro-f4'))
    path = tmp_path_factory.mktemp('weights') / 'vae.pth'
    torch.save(projector.state_dict(), path)
    nan = MODELS.build(dict(type='KLVAEProjector', preset='micro-f4'))
    with torch.no_grad():
        for p in nan.parameters():
            p.fill_(float('nan'))
    nan_path = path.parent / 'nan_vae.pth'
    torch.save(nan.state_dict(), nan_path)
    return str(path), str(nan_path)


def projector(checkpoint=None):
    p = MODELS.build(
        dict(type='KLVAEProjector', preset='micro-f4', checkpoint=checkpoint))
    p.init_weights()
    return p


def build(out, checkpoint, **kwargs):
    args = dict(num_views=VIEWS, dtype='fp32', batch_size=CHUNK)
    args.update(kwargs)
    return build_latent_cache(projector(checkpoint), DATASETS.build(IMAGES),
                              str(out),
                              MODELS.build(dict(type='LMDDataPreprocessor')),
                              IMAGES, **args)


def digests(folder):
    """SHA-256 of every file of a folder (what a failure must not change)."""
    return {
        name: hashlib.sha256(open(osp.join(folder, name), 'rb').read())
        .hexdigest()
        for name in sorted(os.listdir(folder))
    }


@pytest.fixture(scope='module')
def reference(weights, tmp_path_factory):
    """An uninterrupted build: the bytes every recovered build must give."""
    out = tmp_path_factory.mktemp('reference') / 'cache'
    build(out, weights[0])
    return str(out)


def latents_of(folder):
    return np.load(osp.join(folder, 'latents.npy'))


def enospc(*args):
    raise OSError(errno.ENOSPC, 'No space left on device')


# ------------------------------------------------------------ 1. full disk
def test_too_little_free_space_is_refused_before_the_old_cache_is_touched(
        weights, reference, tmp_path, monkeypatch):
    out = tmp_path / 'cache'
    shutil.copytree(reference, out)
    before = digests(out)
    usage = shutil.disk_usage(out)
    monkeypatch.setattr(latent_cache.shutil, 'disk_usage',
                        lambda p: usage._replace(free=1000))
    with pytest.raises(LatentCacheSpaceError) as info:
        build(out, weights[0], force=True)  # a rebuild that needs space
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert str(out) in message and 'needs' in message
    assert 'bytes) are free' in message
    assert 'cache_dir=' in message and 'Free space' in message
    assert digests(out) == before  # the complete cache is still there


def test_enospc_while_reserving_leaves_no_half_made_cache(
        weights, reference, tmp_path, monkeypatch):
    out = tmp_path / 'cache'
    monkeypatch.setattr(latent_cache.os, 'posix_fallocate', enospc,
                        raising=False)
    with pytest.raises(LatentCacheSpaceError, match='latents.npy needs'):
        build(out, weights[0])
    assert os.listdir(out) == []  # an empty folder: the rerun starts afresh
    monkeypatch.undo()
    build(out, weights[0])
    np.testing.assert_array_equal(latents_of(out), latents_of(reference))


def test_full_disk_on_resume_then_freed_space_resumes_to_the_same_bytes(
        weights, reference, tmp_path, monkeypatch):
    out = tmp_path / 'cache'
    build(out, weights[0], max_chunks=1)  # interrupted after one chunk
    progress = np.load(out / 'progress.npy').tolist()
    assert progress == [1, 0, 0]
    monkeypatch.setattr(latent_cache.os, 'posix_fallocate', enospc,
                        raising=False)
    with pytest.raises(LatentCacheSpaceError, match=str(out)):
        build(out, weights[0])
    assert np.load(out / 'progress.npy').tolist() == progress
    monkeypatch.undo()  # space freed
    m = build(out, weights[0])
    assert m['state'] == 'complete'
    np.testing.assert_array_equal(latents_of(out), latents_of(reference))


FULL_DISK_SCRIPT = textwrap.dedent('''
    import json, os, shutil, sys
    import numpy as np, torch
    sys.path.insert(0, sys.argv[3])
    sys.path.insert(0, os.path.dirname(sys.argv[4]))
    torch.set_num_threads(1)
    import test_data_faults as t
    import lmd_toolkit.datasets.latent_cache as lc
    disk, reference, out = sys.argv[1], sys.argv[2], {}
    cache = os.path.join(disk, 'cache')
    filler = os.path.join(disk, 'filler')
    with open(filler, 'wb', buffering=0) as f:  # fill the disk ...
        try:
            while True:
                f.write(b'x' * 4096)
        except OSError:
            pass
    os.truncate(filler, os.path.getsize(filler) - 8192)  # ... but 8 KiB
    for name, lie in (('checked', False), ('reserved', True)):
        real = shutil.disk_usage
        if lie:  # the check passes, the real posix_fallocate hits ENOSPC
            lc.shutil.disk_usage = lambda p: real(p)._replace(free=1 << 40)
        try:
            t.build(cache, sys.argv[5])
            out[name] = 'built'
        except lc.LatentCacheSpaceError as e:
            out[name] = str(e)
        lc.shutil.disk_usage = real
    out['left'] = sorted(os.listdir(cache)) if os.path.isdir(cache) else []
    os.remove(os.path.join(disk, 'filler'))  # free the space
    t.build(cache, sys.argv[5])
    out['same'] = bool(np.array_equal(
        np.load(os.path.join(cache, 'latents.npy')),
        np.load(os.path.join(reference, 'latents.npy'))))
    print('\\nRESULT ' + json.dumps(out))
''')


def test_a_really_full_filesystem_gives_the_error_not_sigbus(
        weights, reference, tmp_path):
    """A 256 KiB tmpfs in a user + mount namespace (no root needed), filled
    to the last block: the build ends in the named error (never SIGBUS),
    and once space is freed it completes with the uninterrupted bytes."""
    if shutil.which('unshare') is None:
        pytest.skip('unshare is not available')
    disk = tmp_path / 'disk'
    disk.mkdir()
    probe = subprocess.run(
        ['unshare', '-rm', 'sh', '-c',
         f'mount -t tmpfs -o size=256k tmpfs {disk}'], capture_output=True)
    if probe.returncode != 0:
        pytest.skip('cannot mount a tmpfs in a user namespace here')
    script = tmp_path / 'full_disk.py'
    script.write_text(FULL_DISK_SCRIPT)
    command = (f'mount -t tmpfs -o size=256k tmpfs {disk} && exec '
               f'{sys.executable} {script} {disk} {reference} {ROOT} '
               f'{osp.abspath(__file__)} {weights[0]}')
    proc = subprocess.run(['unshare', '-rm', 'sh', '-c', command],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-1500:],
                                  proc.stderr[-1500:])
    tail = proc.stdout.rsplit('RESULT ', 1)[-1]
    result = json.loads(tail.splitlines()[0])
    assert 'Not enough free disk space' in result['checked']
    assert 'bytes) are free' in result['checked']
    assert 'latents.npy needs' in result['reserved']
    assert result['left'] == []
    assert result['same']


# ------------------------------------------------------ 2. non-finite data
def test_nan_projector_stops_the_build_naming_rows_and_projector(
        weights, tmp_path):
    out = tmp_path / 'cache'
    with pytest.raises(NonFiniteLatentError) as info:
        build(out, weights[1])
    message = str(info.value)
    assert 'rows 0, 1, 2, 3' in message and 'KLVAEProjector' in message
    assert 'nan_vae.pth' in message and 'model.projector.checkpoint' in message
    assert 'nothing of this chunk was written' in message
    assert np.load(out / 'progress.npy').tolist() == [0, 0, 0]
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['state'] == 'in_progress' and manifest['num_done'] == 0


def test_fp16_overflow_names_the_fix_dtype_fp32(weights, tmp_path):
    p = projector(weights[0])
    p.scale_factor.fill_(1e6)  # finite in fp32, Inf in fp16
    with pytest.raises(NonFiniteLatentError, match='use dtype fp32'):
        build_latent_cache(p, DATASETS.build(IMAGES), str(tmp_path / 'c'),
                           MODELS.build(dict(type='LMDDataPreprocessor')),
                           IMAGES, dtype='fp16', batch_size=CHUNK)


def test_forced_rebuild_with_a_nan_projector_keeps_the_good_cache(
        weights, reference, tmp_path):
    out = tmp_path / 'cache'
    shutil.copytree(reference, out)
    before = digests(out)
    with pytest.raises(NonFiniteLatentError, match='NaN / Inf'):
        build(out, weights[1], force=True)
    assert digests(out) == before


def test_nan_written_into_a_cache_is_refused_when_served(reference,
                                                         tmp_path):
    out = tmp_path / 'cache'
    shutil.copytree(reference, out)
    array = np.load(out / 'latents.npy', mmap_mode='r+')
    array[5, 0, 1, 1] = np.nan
    array.flush()
    del array
    dataset = LatentCacheDataset(str(out), allow_random_projector=True)
    assert torch.isfinite(dataset[4]['inputs']).all()  # other rows serve
    with pytest.raises(UnreadableFileError) as info:
        dataset[5]
    message = str(info.value)
    assert 'latents.npy' in message and 'Latent cache data' in message
    assert 'row 5 (image 2, view 1' in message
    assert f'Delete the folder {out}' in message


# ------------------------------------------------- 3. damaged cache files
@pytest.mark.parametrize('content, problem', [
    (b'{"format_version": 1, "sta', 'truncated or not valid JSON'),
    (b'', 'is empty'),
    (b'{}', 'lacks the fields format_version'),
])
def test_damaged_manifest_names_file_role_and_fix(reference, tmp_path,
                                                  weights, content, problem):
    out = tmp_path / 'cache'
    shutil.copytree(reference, out)
    (out / 'manifest.json').write_bytes(content)
    before = digests(out)
    for attempt in (lambda: LatentCacheDataset(str(out)),
                    lambda: build(out, weights[0])):
        with pytest.raises(UnreadableFileError) as info:
            attempt()
        message = str(info.value)
        assert 'Latent cache manifest' in message and problem in message
        assert 'manifest.json' in message
        assert f'Delete the folder {out}' in message
        assert 'tools/misc/cache_latents.py' in message
    assert digests(out) == before  # the builder did not replace anything


@pytest.mark.parametrize('size', [0, 100, 1000])
def test_truncated_latents_of_a_complete_cache_names_the_file(
        reference, tmp_path, size):
    out = tmp_path / 'cache'
    shutil.copytree(reference, out)
    with open(out / 'latents.npy', 'r+b') as f:
        f.truncate(size)
    with pytest.raises(UnreadableFileError) as info:
        LatentCacheDataset(str(out))
    message = str(info.value)
    assert 'latents.npy' in message and 'Latent cache data' in message
    assert f'Delete the folder {out}' in message
    assert ('truncated' in message or 'empty' in message
            or 'the manifest says' in message)


@pytest.mark.parametrize('name, size', [('progress.npy', 10),
                                        ('progress.npy', 0),
                                        ('latents.npy', 200)])
def test_incomplete_cache_with_a_damaged_file_is_rebuilt(
        weights, reference, tmp_path, name, size):
    out = tmp_path / 'cache'
    build(out, weights[0], max_chunks=2)
    with open(out / name, 'r+b') as f:
        f.truncate(size)
    m = build(out, weights[0])
    assert m['state'] == 'complete' and m['num_done'] == 12
    np.testing.assert_array_equal(latents_of(out), latents_of(reference))
    assert np.load(out / 'progress.npy').tolist() == [1, 1, 1]


def test_damaged_run_record_is_named_and_not_overwritten(tmp_path):
    path = tmp_path / 'latent_cache.json'
    path.write_text('{"caches": [')
    with pytest.raises(UnreadableFileError) as info:
        LatentCacheHook._record(str(tmp_path), [], 1.0)
    assert 'latent_cache.json' in str(info.value)
    assert 'Latent cache record' in str(info.value)
    assert path.read_text() == '{"caches": ['
    path.write_text(json.dumps(dict(caches=[dict(cache_dir='a')])))
    LatentCacheHook._record(str(tmp_path), [], 2.0)
    assert json.loads(path.read_text()) == dict(
        seconds=2.0, caches=[dict(cache_dir='a')])
    assert os.listdir(tmp_path) == ['latent_cache.json']  # no temp left


# ---------------------------------------------------------------- 4. images
def image_folder(tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    rgb = np.random.default_rng(0).integers(0, 255, (32, 40, 3), np.uint8)
    Image.fromarray(rgb).save(folder / 'a.jpg', quality=95)
    Image.fromarray(rgb).convert('L').save(folder / 'b.png')  # grayscale
    data = (folder / 'a.jpg').read_bytes()
    (folder / 'c_truncated.jpg').write_bytes(data[:len(data) // 2])
    (folder / 'd_not_an_image.png').write_bytes(b'not a PNG at all')
    return folder


def test_bad_images_in_a_cache_build_name_the_file_and_the_dataset(
        weights, tmp_path):
    folder = image_folder(tmp_path)
    images = dict(type='ImageFolderDataset', data_root=str(folder),
                  check_files=False,
                  pipeline=[dict(type='mmpretrain.PackInputs')])
    dataset = DATASETS.build(images)
    with pytest.warns(UserWarning):
        with pytest.raises(RuntimeError) as info:
            build_latent_cache(projector(weights[0]), dataset,
                               str(tmp_path / 'cache'),
                               MODELS.build(dict(type='LMDDataPreprocessor')),
                               images, batch_size=2)
    message = str(info.value)
    assert 'ImageFolderDataset' in message
    assert 'c_truncated.jpg' in message and 'truncated' in message
    assert 'Replace or delete the file' in message
    # rows 0-1 (a.jpg, b.png) were written; the chunk of the bad file not
    assert np.load(tmp_path / 'cache' / 'progress.npy').tolist() == [1, 0]


@pytest.mark.parametrize('name', ['c_truncated.jpg', 'd_not_an_image.png'])
def test_bad_image_in_test_mode_names_the_file_and_the_dataset(
        tmp_path, name):
    folder = image_folder(tmp_path)
    dataset = ImageFolderDataset(data_root=str(folder), check_files=False,
                                 test_mode=True)
    index = [osp.basename(dataset.get_data_info(i)['img_path'])
             for i in range(len(dataset))].index(name)
    with pytest.raises(RuntimeError) as info:
        dataset[index]
    assert name in str(info.value) and 'ImageFolderDataset' in str(
        info.value) and 'Replace or delete the file' in str(info.value)
    assert dataset[1]['img'].shape == (32, 40, 3)  # grayscale -> RGB


def test_image_smaller_than_a_center_crop_names_image_size_and_fix(tmp_path):
    folder = image_folder(tmp_path)
    crop = [dict(type='mmpretrain.CenterCrop', crop_size=36)]
    dataset = ImageFolderDataset(data_root=str(folder), pipeline=crop,
                                 test_mode=True)
    with pytest.raises(ImageTooSmallError) as info:
        dataset[0]
    message = str(info.value)
    assert 'a.jpg' in message and 'ImageFolderDataset' in message
    assert '32x40 (HxW)' in message and 'crops 36x36' in message
    assert 'ResizeEdge' in message and 'remove the image' in message
    resized = ImageFolderDataset(
        data_root=str(folder), test_mode=True,
        pipeline=[dict(type='mmpretrain.ResizeEdge', scale=36,
                       edge='short')] + crop)
    assert resized[0]['img'].shape == (36, 36, 3)
    photos = DATASETS.build(dict(IMAGES, pipeline=crop))  # 32 px crops
    with pytest.raises(ImageTooSmallError, match='EmbeddedPhotos: image'):
        photos[0]


# ------------------------------------------------------ 5. random projector
def test_prepare_refuses_a_projector_without_weights(weights, tmp_path):
    kwargs = dict(cache_dir=str(tmp_path / 'root'), dataset=IMAGES,
                  num_views=1, batch_size=CHUNK, dtype='fp32')
    pre = MODELS.build(dict(type='LMDDataPreprocessor'))
    with pytest.raises(RandomProjectorError) as info:
        LatentCacheDataset(**kwargs).prepare(projector(), pre)
    message = str(info.value)
    assert 'allow_random_projector=True' in message
    assert 'model.projector.checkpoint' in message
    assert 'KLVAEProjector' in message
    assert not osp.exists(tmp_path / 'root')  # nothing was written
    allowed = LatentCacheDataset(allow_random_projector=True, **kwargs)
    allowed.prepare(projector(), pre)
    assert allowed.manifest['state'] == 'complete'
    loaded = LatentCacheDataset(**kwargs)
    loaded.prepare(projector(weights[0]), pre)  # weights: no permission
    assert loaded.manifest['projector']['checkpoint_sha256']
    with pytest.raises(RandomProjectorError):
        build_latent_cache(projector(), DATASETS.build(IMAGES),
                           str(tmp_path / 'direct'), pre, IMAGES,
                           allow_random_projector=False)


def test_config_check_refuses_before_any_model_is_built():
    cfg = Config.fromfile(osp.join(ROOT, 'configs',
                                   'lmd_vit-tiny_klvae_photos_cs.py'))
    cfg.model.projector.checkpoint = None
    with pytest.raises(RandomProjectorError) as info:
        check_latent_cache_config(cfg)
    message = str(info.value)
    assert 'train_dataloader.dataset.allow_random_projector=True' in message
    assert 'model.projector.checkpoint' in message
    for change in (dict(model=dict(projector=dict(checkpoint='vae.pth'))),
                   dict(train_dataloader=dict(
                       dataset=dict(encode_on_the_fly=True))),
                   dict(train_dataloader=dict(
                       dataset=dict(allow_random_projector=True)))):
        ok = cfg.copy()
        ok.merge_from_dict(change)
        check_latent_cache_config(ok)  # no error
    wrapped = cfg.copy()
    wrapped.train_dataloader.dataset = dict(
        type='RepeatDataset', times=2,
        dataset=cfg.train_dataloader.dataset.to_dict())
    with pytest.raises(RandomProjectorError,
                       match=r'train_dataloader\.dataset\.dataset\.allow'):
        check_latent_cache_config(wrapped)
    check_latent_cache_config(Config.fromfile(
        osp.join(ROOT, 'tests', 'data', 'tiny_lmd_klvae_photos.py')))
    check_latent_cache_config(Config.fromfile(
        osp.join(ROOT, 'configs', 'lmd_vit-tiny_pixel_photos_cs.py')))


def test_cli_refuses_a_random_projector_unless_allowed(tmp_path,
                                                       monkeypatch):
    tool = load_tool('tools/misc/cache_latents.py', 'cache_latents_tool')
    out = tmp_path / 'cli'
    argv = [
        'cache_latents.py',
        osp.join(ROOT, 'configs', 'lmd_vit-tiny_klvae_photos_cs.py'),
        '--out', str(out), '--batch-size', '2', '--views', '1',
        '--cfg-options', 'model.projector.checkpoint=None',
        'model.projector.scale_factor=1.0',
        'train_dataloader.dataset.dataset.num_crops=2'
    ]
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(RandomProjectorError,
                       match='--allow-random-projector'):
        tool.main()
    assert not osp.exists(out / 'manifest.json')
    monkeypatch.setattr(sys, 'argv', argv[:2] + ['--allow-random-projector']
                        + argv[2:])
    tool.main()
    assert json.loads((out / 'manifest.json').read_text())['state'] == \
        'complete'
