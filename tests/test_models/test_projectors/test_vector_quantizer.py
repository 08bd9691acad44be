"""VectorQuantizer: nearest codes, straight-through gradients, loss terms."""
import math

import pytest
import torch

from lmd_toolkit.models.projectors.quantizer import VectorQuantizer
from lmd_toolkit.models.projectors.vqgan import VQGANProjector


def _quantizer(codes: torch.Tensor, legacy: bool = False,
               chunk_size: int = 8192) -> VectorQuantizer:
    vq = VectorQuantizer(
        codes.shape[0], codes.shape[1], legacy=legacy, chunk_size=chunk_size)
    with torch.no_grad():
        vq.embedding.weight.copy_(codes)
    return vq


@pytest.mark.parametrize('chunk_size', [8192, 7])
def test_indices_are_brute_force_nearest(chunk_size):
    gen = torch.Generator().manual_seed(0)
    codes = torch.randn(50, 3, generator=gen)
    z = torch.randn(2, 3, 5, 4, generator=gen)
    vq = _quantizer(codes, chunk_size=chunk_size)
    z_q, _, info = vq(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 3).double()
    brute = (flat[:, None] - codes.double()[None]).pow(2).sum(-1).argmin(1)
    assert torch.equal(info['indices'].flatten(), brute)
    assert info['indices'].shape == (2, 5, 4)
    torch.testing.assert_close(z_q, vq.lookup(info['indices']))


def test_straight_through_gradient_reaches_input():
    codes = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    vq = _quantizer(codes)
    z = torch.randn(1, 2, 3, 3, requires_grad=True)
    z_q, _, _ = vq(z)
    weights = torch.randn_like(z_q)
    (z_q * weights).sum().backward()
    torch.testing.assert_close(z.grad, weights)  # identity backward


def test_gradient_reaches_projector_images(images):
    model = VQGANProjector(preset='micro-f4')
    x = images.clone().requires_grad_(True)
    z_q, loss, _ = model.encode_quantized(x)
    (z_q.square().mean() + loss).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize('legacy', [False, True])
def test_loss_terms_on_hand_computed_example(legacy):
    codes = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    vq = _quantizer(codes, legacy=legacy)  # beta 0.25
    # two vectors (B=1, D=2, h=1, w=2): (0.2, 0.1) -> code 0,
    # (0.9, 1.3) -> code 1
    z = torch.tensor([[[[0.2, 0.9]], [[0.1, 1.3]]]], requires_grad=True)
    z_q, loss, info = vq(z)
    assert info['indices'].flatten().tolist() == [0, 1]
    # squared errors: 0.04, 0.01, 0.01, 0.09 -> mean 0.0375 for both terms
    mse = (0.04 + 0.01 + 0.01 + 0.09) / 4
    expected = (0.25 * mse + mse) if legacy else (mse + 0.25 * mse)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert info['codebook_loss'].item() == pytest.approx(mse, rel=1e-6)
    # gradients tell the weighting apart: d/dz of the commitment term is
    # 2 (z - e) / N times its weight; the codebook gets the other weight
    loss.backward()
    e = codes[[0, 1]].t().reshape(1, 2, 1, 2)
    w_commit = 1.0 if legacy else 0.25
    w_code = 0.25 if legacy else 1.0
    torch.testing.assert_close(z.grad, w_commit * 2 * (z.detach() - e) / 4)
    diff = (z.detach() - e).permute(0, 2, 3, 1).reshape(2, 2)
    torch.testing.assert_close(vq.embedding.weight.grad,
                               w_code * 2 * (-diff) / 4)
    # usage / perplexity: two of two codes, uniformly
    assert info['usage'].item() == 1.0
    assert info['perplexity'].item() == pytest.approx(2.0, rel=1e-5)


def test_perplexity_and_usage_of_skewed_assignment():
    codes = torch.tensor([[0.0], [10.0], [20.0], [30.0]])
    vq = _quantizer(codes)
    z = torch.tensor([0.1, 0.2, -0.1, 9.0]).view(1, 1, 1, 4)
    _, _, info = vq(z)
    probs = torch.tensor([0.75, 0.25])
    assert info['usage'].item() == 0.5
    assert info['perplexity'].item() == pytest.approx(
        math.exp(-(probs * probs.log()).sum().item()), rel=1e-5)


def test_wrong_channel_count_is_named():
    vq = VectorQuantizer(4, 3)
    with pytest.raises(ValueError, match='expected 3 channels'):
        vq(torch.zeros(1, 4, 2, 2))
