import math

import numpy as np
import pytest
import torch

from lmd_toolkit.models.layers import build_2d_sincos_pos_embed


def reference_table(gh, gw, dim):
    """Straightforward loop: first half encodes the column, second the row,
    each as [sin(pos * w_k) ..., cos(pos * w_k) ...],
    w_k = 1e4^(-k/(dim/4))."""
    quarter = dim // 4
    out = np.zeros((gh * gw, dim))
    for i in range(gh):
        for j in range(gw):
            t = i * gw + j
            for half, pos in enumerate((j, i)):
                for k in range(quarter):
                    w = 1.0 / 10000**(k / quarter)
                    out[t, half * 2 * quarter + k] = math.sin(pos * w)
                    out[t,
                        half * 2 * quarter + quarter + k] = math.cos(pos * w)
    return out


@pytest.mark.parametrize('gh,gw,dim', [(4, 4, 16), (3, 5, 8), (7, 7, 32)])
def test_table_equals_loop(gh, gw, dim):
    table = build_2d_sincos_pos_embed(gh, gw, dim)
    assert table.shape == (gh * gw, dim) and table.dtype == torch.float32
    np.testing.assert_allclose(table.numpy(),
                               reference_table(gh, gw, dim),
                               atol=1e-6)


def test_cls_slot_is_zero():
    table = build_2d_sincos_pos_embed(2, 3, 8, cls_token=True)
    assert table.shape == (7, 8)
    assert torch.all(table[0] == 0)
    torch.testing.assert_close(table[1:], build_2d_sincos_pos_embed(2, 3, 8))


def test_dim_not_divisible_by_4():
    with pytest.raises(ValueError, match='divisible by 4'):
        build_2d_sincos_pos_embed(2, 2, 6)
