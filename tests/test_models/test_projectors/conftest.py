"""Shared tiny fixtures of the projector tests (random weights only)."""
import os.path as osp
from typing import Callable, Dict, Tuple

import pytest
import torch

_DATA = osp.join(osp.dirname(__file__), 'data')


def _read_key_list(name: str) -> Dict[str, Tuple[int, ...]]:
    shapes = {}
    with open(osp.join(_DATA, f'ldm_keys_{name}.txt')) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            key, shape = line.rstrip('\n').split('\t')
            shapes[key] = tuple(int(s) for s in shape.strip('[]').split(','))
    return shapes


@pytest.fixture
def ldm_key_list() -> Callable[[str], Dict[str, Tuple[int, ...]]]:
    """``name -> {key: shape}`` of the official LDM checkpoints (the lists
    in ``data/``, copied from the LDM / SD checkpoints' key names)."""
    return _read_key_list


@pytest.fixture
def images() -> torch.Tensor:
    """One 32x32 image in [-1, 1] (batch of 1 keeps the tests fast)."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, 32, 32, generator=gen) * 2 - 1
