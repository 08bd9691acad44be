"""tools/demo.py, the README's main job, at a budget of a few iterations:
stage 1 trains the tiny KL-VAE, stage 2 trains LMD on its latents and writes
image-space grids; a second run reuses the stage-1 checkpoint."""
import json

import torch
from PIL import Image
from tool_helpers import run_tool, scalars

from lmd_toolkit.utils.compat import allow_mmengine_checkpoint_globals


def test_demo_two_stages_then_reuse(tmp_path):
    work_dir = tmp_path / 'demo'
    args = ['tools/demo.py', '--work-dir', str(work_dir), '--stage1-iters',
            '2', '--stage2-iters', '2']
    first = run_tool(args, timeout=600)
    stage1 = work_dir / 'stage1' / 'iter_2.pth'
    assert stage1.is_file()
    assert 'Stage 1: training' in first.stdout + first.stderr
    # the projector evaluation ran: PSNR of the projector and of bicubic
    evaluation = json.loads(
        (work_dir / 'stage1' / 'iter_2.pth.projector_eval.json').read_text())
    assert set(evaluation['results']) == {'projector', 'bicubic x8'}

    # stage 2 froze exactly the stage-1 weights (and calibrated its scale);
    # the checkpoints' message hub needs the toolkit's narrow allow-list,
    # also when this file runs on its own
    allow_mmengine_checkpoint_globals()
    s1 = torch.load(stage1, map_location='cpu', weights_only=True)
    s2 = torch.load(work_dir / 'stage2' / 'iter_2.pth', map_location='cpu',
                    weights_only=True)
    for key, value in s1['state_dict'].items():
        if key.startswith('projector.') and 'scale_factor' not in key:
            torch.testing.assert_close(s2['state_dict'][key], value)
    assert float(s2['state_dict']['projector.scale_factor']) > 0
    # image-space grids: 64 px photos, decoded by the projector
    grids = sorted((work_dir / 'stage2' / 'reconstructions').glob('*.png'))
    assert grids
    with Image.open(grids[-1]) as grid:
        assert grid.mode == 'RGB' and min(grid.size) >= 64
    assert any('PSNR' in r for r in scalars(str(work_dir / 'stage2')))

    # stage 2 trained from latents encoded once into <work-dir>/latent_cache
    caches = list((work_dir / 'latent_cache').iterdir())
    assert len(caches) == 1
    manifest = json.loads((caches[0] / 'manifest.json').read_text())
    assert manifest['state'] == 'complete' and manifest['num_views'] == 4
    assert manifest['num_images'] == 2048
    assert manifest['projector']['checkpoint'] == str(stage1)
    assert 'trained from the latent cache' in first.stdout + first.stderr

    mtime = stage1.stat().st_mtime_ns
    second = run_tool(args, timeout=600)
    assert 'Stage 1: reusing' in second.stdout + second.stderr
    assert stage1.stat().st_mtime_ns == mtime
    # the second run reused the cache: nothing was encoded or rewritten
    assert 'the cache is complete' in second.stdout + second.stderr
    again = json.loads((caches[0] / 'manifest.json').read_text())
    assert again['updated'] == manifest['updated']
