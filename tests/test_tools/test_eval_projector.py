"""tools/analysis_tools/eval_projector.py: projector vs bicubic f x down-up
on the stage-1 config's held-out crops, with per-crop PSNRs."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from tool_helpers import ROOT, run_tool

from lmd_toolkit.models.projectors import KLVAEProjector

CONFIG = osp.join(ROOT, 'configs', 'projectors', 'klvae_tiny-f8_photos.py')


def test_eval_projector_per_crop_results(tmp_path):
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'random_tiny-f8.pth')
    torch.save(KLVAEProjector(preset='tiny-f8').state_dict(), ckpt)
    proc = run_tool(['tools/analysis_tools/eval_projector.py', CONFIG, ckpt])
    with open(ckpt + '.projector_eval.json') as f:
        out = json.load(f)
    assert osp.isfile(ckpt + '.projector_eval.png')

    per_crop = out['per_crop_PSNR']
    assert out['num_images'] == 64
    assert set(per_crop) == {'projector', 'bicubic x8'}
    for name, values in per_crop.items():
        assert len(values) == 64
        result = out['results'][name]
        # The mean of the per-crop values is the PSNR metric's result.
        assert np.mean(values) == pytest.approx(result['PSNR'], abs=1e-9)
        assert np.median(values) == pytest.approx(result['median_PSNR'])
    # Bicubic 8x down-up on the 64 held-out crops (docs/en/stage1.md).
    assert out['results']['bicubic x8']['PSNR'] == pytest.approx(26.74,
                                                                 abs=0.01)
    wins = sum(p > b for p, b in zip(per_crop['projector'],
                                     per_crop['bicubic x8']))
    assert out['projector_wins'] == wins
    # An untrained projector reconstructs nothing: bicubic wins every crop.
    assert wins == 0
    assert 'beats bicubic x8 on 0 of 64 crops' in proc.stdout


def test_eval_projector_missing_checkpoint(tmp_path):
    import subprocess
    import sys
    missing = str(tmp_path / 'nope.pth')
    proc = subprocess.run([
        sys.executable, 'tools/analysis_tools/eval_projector.py', CONFIG,
        missing
    ], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0
    assert f'Checkpoint not found: {missing}' in proc.stderr
