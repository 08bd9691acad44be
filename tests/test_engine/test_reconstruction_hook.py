import numpy as np
import pytest
import torch

from lmd_toolkit.engine.hooks import (ReconstructionVisualizationHook,
                                      reconstruction_grid)
from lmd_toolkit.engine.hooks.reconstruction_hook import make_grid
from lmd_toolkit.registry import MODELS
from lmd_toolkit.utils import register_all_modules

register_all_modules()


def tiny_model():
    return MODELS.build(
        dict(
            type='LatentMaskingDiffusion',
            projector=dict(type='IdentityProjector'),
            backbone=dict(
                type='LMDViT',
                arch=dict(embed_dims=16, num_layers=1, num_heads=2),
                in_channels=3,
                latent_size=16,
                patch_size=4),
            neck=dict(
                type='LMDDecoder',
                num_patches=16,
                patch_size=4,
                in_channels=3,
                embed_dims=16,
                decoder_embed_dims=16,
                decoder_depth=1,
                decoder_num_heads=2),
            head=dict(
                type='LatentReconstructionHead', patch_size=4,
                norm_target=False))).eval()


def test_make_grid_layout_and_scale():
    a = torch.zeros(3, 2, 3)
    b = torch.full((3, 2, 3), 255.0)
    grid = make_grid([[a, b]], padding=1, scale=2)
    assert grid.shape == (1 + 4 + 1, 1 + 6 + 1 + 6 + 1, 3)
    assert (grid[1:5, 1:7] == 0).all() and (grid[1:5, 8:14] == 255).all()
    assert (grid[0] == 255).all()  # padding


def test_reconstruction_grid_columns():
    model = tiny_model()
    inputs = torch.rand(2, 3, 16, 16) * 2 - 1
    grid = reconstruction_grid(model, inputs, mask_ratios=(0.0, 0.5), seed=0)
    # 2 rows; columns: input + 2 x (masked, reconstruction)
    assert grid.shape == (2 + 2 * 18, 2 + 5 * 18, 3)
    gt = ((inputs[0] + 1) * 127.5).round().permute(1, 2, 0).numpy()
    tile = lambda col: grid[2:18, 2 + col * 18:18 + col * 18]  # noqa: E731
    np.testing.assert_allclose(tile(0), gt, atol=1)
    # ratio 0: nothing masked, the reconstruction pastes every visible patch
    np.testing.assert_allclose(tile(1), gt, atol=1)
    np.testing.assert_allclose(tile(2), gt, atol=1)
    # ratio 0.5: half of the 4x4-pixel patches are grey (128) in column 3
    grey = (tile(3).reshape(4, 4, 4, 4, 3).transpose(0, 2, 1, 3, 4) == 128)
    assert grey.all(axis=(2, 3, 4)).sum() == 8


def test_invalid_arguments():
    with pytest.raises(ValueError, match='interval=0'):
        ReconstructionVisualizationHook(interval=0)
