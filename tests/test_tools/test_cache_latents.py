"""tools/misc/cache_latents.py end to end: interrupted, then resumed by
rerunning the same command."""
import json
import os.path as osp

import numpy as np

from tool_helpers import ROOT, run_tool

CONFIG = osp.join(ROOT, 'configs', 'cache',
                  'lmd_vit-tiny_kl-tiny-f8_photos_cs.py')


def test_cli_interrupt_then_resume(tmp_path):
    out = str(tmp_path / 'cache')
    args = [
        'tools/misc/cache_latents.py', CONFIG, '--out', out, '--views', '2',
        '--batch-size', '3', '--cfg-options',
        'train_dataloader.dataset.num_crops=3'
    ]
    proc = run_tool(args + ['--max-chunks', '1'])
    assert '3/6 latents' in proc.stdout and 'in_progress' in proc.stdout
    proc = run_tool(args)
    assert 'resuming at latent 3 of 6' in proc.stdout + proc.stderr
    with open(osp.join(out, 'manifest.json')) as f:
        manifest = json.load(f)
    assert manifest['state'] == 'complete'
    assert manifest['projector']['preset'] == 'tiny-f8'
    assert manifest['config'] == CONFIG
    latents = np.load(osp.join(out, 'latents.npy'))
    assert latents.shape == (6, 4, 8, 8) and latents.dtype == np.float16
    assert np.isfinite(latents).all() and np.abs(latents[3:]).sum() > 0
