import torch

from lmd_toolkit.evaluation import mean_latent_baseline


def test_mean_latent_baseline_by_hand():
    # 1 image, 2 channels, 2x4 latent, patch 2 -> 2 tokens (left, right).
    z = torch.zeros(1, 2, 2, 4)
    z[0, 0, :, :2] = torch.tensor([[1., 2.], [3., 4.]])  # left, channel 0
    z[0, 1, :, :2] = 10.0  # left, channel 1
    z[0, :, :, 2:] = -7.0  # right (to be masked)
    mask = torch.tensor([[0., 1.]])  # right token removed
    out = mean_latent_baseline(z, mask, patch_size=2)
    assert torch.equal(out[..., :2], z[..., :2])  # visible unchanged
    assert torch.allclose(out[0, 0, :, 2:], torch.full((2, 2), 2.5))
    assert torch.allclose(out[0, 1, :, 2:], torch.full((2, 2), 10.0))


def test_mean_latent_baseline_nothing_masked_is_identity():
    z = torch.randn(3, 4, 8, 8)
    assert torch.equal(
        mean_latent_baseline(z, torch.zeros(3, 16), patch_size=2), z)
