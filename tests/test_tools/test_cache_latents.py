"""tools/misc/cache_latents.py end to end: interrupted, then resumed by
rerunning the same command, into the folder training then uses."""
import json
import os
import os.path as osp

import numpy as np

from tool_helpers import ROOT, run_tool

CONFIG = osp.join(ROOT, 'configs', 'lmd_vit-tiny_klvae_photos_cs.py')


def test_cli_interrupt_then_resume(tmp_path):
    root = str(tmp_path / 'cache')
    args = [
        'tools/misc/cache_latents.py', CONFIG, '--views', '2',
        '--batch-size', '3', '--allow-random-projector', '--cfg-options',
        'model.projector.checkpoint=None', 'model.projector.scale_factor=1.0',
        'train_dataloader.dataset.dataset.num_crops=3',
        f'train_dataloader.dataset.cache_dir={root}'
    ]
    proc = run_tool(args + ['--max-chunks', '1'])
    assert '3/6 latents' in proc.stdout and 'in_progress' in proc.stdout
    # the folder a training run of this config (with 2 views) looks in
    folders = os.listdir(root)
    assert len(folders) == 1 and folders[0].startswith('EmbeddedPhotos_')
    out = osp.join(root, folders[0])
    proc = run_tool(args)
    assert 'resuming at latent 3 of 6' in proc.stdout + proc.stderr
    with open(osp.join(out, 'manifest.json')) as f:
        manifest = json.load(f)
    assert manifest['state'] == 'complete'
    assert manifest['projector']['preset'] == 'tiny-f8'
    assert manifest['config'] == CONFIG
    assert manifest['num_views'] == 2 and manifest['chunk_rows'] == 3
    latents = np.load(osp.join(out, 'latents.npy'))
    assert latents.shape == (6, 4, 8, 8) and latents.dtype == np.float16
    assert np.isfinite(latents).all() and np.abs(latents[3:]).sum() > 0
    proc = run_tool(args)
    assert 'nothing to do' in proc.stdout + proc.stderr


def test_cli_with_an_image_dataset_writes_to_out(tmp_path):
    out = str(tmp_path / 'plain')
    run_tool([
        'tools/misc/cache_latents.py',
        osp.join(ROOT, 'configs', 'lmd_vit-tiny_pixel_photos_cs.py'), '--out',
        out, '--cfg-options', 'train_dataloader.dataset.num_crops=2'
    ])
    with open(osp.join(out, 'manifest.json')) as f:
        manifest = json.load(f)
    assert manifest['projector']['type'] == 'IdentityProjector'
    assert manifest['num_rows'] == 2 and manifest['latent_shape'] == [
        3, 64, 64]
