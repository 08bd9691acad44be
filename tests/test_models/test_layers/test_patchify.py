import pytest
import torch

from lmd_toolkit.models.layers import patchify, unpatchify


@pytest.mark.parametrize('d', [3, 4])
@pytest.mark.parametrize('p', [1, 2, 4])
def test_round_trip(d, p):
    z = torch.randn(2, d, 8, 12)
    x = patchify(z, p)
    assert x.shape == (2, (8 // p) * (12 // p), p * p * d)
    torch.testing.assert_close(unpatchify(x, p, 8, 12), z)


def test_patch_content_and_order():
    z = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    x = patchify(z, 2)
    # token 1 = row 0, column 1 of the patch grid; values as (p, p, d)
    expected = z[0, :, 0:2, 2:4].permute(1, 2, 0).reshape(-1)
    torch.testing.assert_close(x[0, 1], expected)


def test_indivisible_size_error():
    with pytest.raises(ValueError, match='divisible by patch_size=4'):
        patchify(torch.randn(1, 4, 6, 8), 4)
    with pytest.raises(ValueError, match='divisible'):
        unpatchify(torch.randn(1, 4, 16), 2, 5, 4)
