"""Tiny models shared by the inference tests (random weights, 64 px)."""
import os.path as osp

import pytest
import torch

from lmd_toolkit.apis import init_model

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(ROOT, 'tests', 'data', 'tiny_lmd_photos.py')

# The tiny demo with a micro KL-VAE projector (f = 4): latent 16 x 16 x 4,
# patch 2 -> 64 tokens, as many as the pixel model.
KL_OPTIONS = {
    'model.projector':
    dict(type='KLVAEProjector', preset='micro-f4', _delete_=True),
    'model.backbone.in_channels':
    4,
    'model.backbone.latent_size':
    16,
    'model.backbone.patch_size':
    2,
    'model.neck.patch_size':
    2,
    'model.neck.in_channels':
    4,
    'model.head.patch_size':
    2,
}


@pytest.fixture(scope='session')
def pixel_model():
    """Identity projector, 8 x 8 tokens of 8 x 8 pixels."""
    torch.manual_seed(0)
    return init_model(TINY_CONFIG)


@pytest.fixture(scope='session')
def kl_model():
    """Micro KL-VAE projector (random weights), 8 x 8 tokens."""
    torch.manual_seed(0)
    return init_model(TINY_CONFIG, cfg_options=dict(KL_OPTIONS))


@pytest.fixture(scope='session')
def images():
    """Three random uint8 images (3, 3, 64, 64)."""
    g = torch.Generator().manual_seed(1)
    return torch.randint(0,
                         256, (3, 3, 64, 64),
                         dtype=torch.uint8,
                         generator=g)
