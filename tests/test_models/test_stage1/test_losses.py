"""Stage-1 losses: hinge GAN, KL, adaptive GAN weight, pixel and LPIPS."""
import os.path as osp

import pytest
import torch
import torch.nn as nn

from lmd_toolkit.models.losses import (LPIPSLoss, adaptive_gan_weight,
                                       gaussian_kl, hinge_d_loss,
                                       hinge_g_loss, pixel_loss)


def test_hinge_losses_on_hand_examples():
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - r) = 0, 0.5, 2
    fake = torch.tensor([-3.0, 0.0])  # relu(1 + f) = 0, 1
    d = hinge_d_loss(real, fake)
    assert d.item() == pytest.approx(2.5 / 3 + 0.5)
    # confident, correct discriminator: no loss
    assert hinge_d_loss(torch.full((4, ), 1.5), torch.full((4, ), -2.0)) == 0
    assert hinge_g_loss(fake).item() == pytest.approx(1.5)
    assert hinge_g_loss(torch.tensor([[1.0, 3.0]])).item() == -2.0


def test_kl_equals_closed_form():
    mean = torch.tensor([0.5, -1.0, 0.0, 2.0]).view(1, 4, 1, 1)
    logvar = torch.tensor([0.0, 1.0, -2.0, 0.3]).view(1, 4, 1, 1)
    expected = sum(
        0.5 * (m**2 + torch.exp(torch.tensor(v)).item() - 1 - v)
        for m, v in zip([0.5, -1.0, 0.0, 2.0], [0.0, 1.0, -2.0, 0.3]))
    kl = gaussian_kl(mean, logvar)
    assert kl.shape == (1, )
    assert kl.item() == pytest.approx(expected, rel=1e-6)
    # the standard normal has zero KL; per-sample sums
    z = torch.zeros(3, 4, 2, 2)
    assert torch.equal(gaussian_kl(z, z), torch.zeros(3))
    ones, zeros = torch.ones(2, 4, 2, 2), torch.zeros(2, 4, 2, 2)
    assert torch.allclose(gaussian_kl(ones, zeros), torch.full((2, ), 8.0))


def test_pixel_loss_kinds():
    a, b = torch.tensor([1.0, -2.0]), torch.tensor([0.0, 1.0])
    assert torch.equal(pixel_loss(a, b, 'l1'), torch.tensor([1.0, 3.0]))
    assert torch.equal(pixel_loss(a, b, 'l2'), torch.tensor([1.0, 9.0]))
    with pytest.raises(ValueError, match="'l1', 'l2'"):
        pixel_loss(a, b, 'huber')


class ToyDecoder(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv_in = nn.Conv2d(2, 4, 3, padding=1)
        self.conv_out = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, z):
        return self.conv_out(torch.tanh(self.conv_in(z)))


def test_adaptive_weight_equals_formula_by_hand():
    torch.manual_seed(0)
    decoder = ToyDecoder()
    disc = nn.Conv2d(3, 1, 3)
    z, x = torch.randn(2, 2, 6, 6), torch.randn(2, 3, 6, 6)

    def losses():
        x_hat = decoder(z)
        return (x_hat - x).abs().mean(), -disc(x_hat).mean()

    rec, gan = losses()
    gamma = adaptive_gan_weight(rec, gan, decoder.conv_out.weight)
    # independently: two fresh graphs, gradients at conv_out.weight only
    rec2, _ = losses()
    g_rec, = torch.autograd.grad(rec2, decoder.conv_out.weight)
    _, gan2 = losses()
    g_gan, = torch.autograd.grad(gan2, decoder.conv_out.weight)
    expected = torch.sqrt((g_rec**2).sum()) / (torch.sqrt(
        (g_gan**2).sum()) + 1e-4)
    assert not gamma.requires_grad
    assert gamma.item() == pytest.approx(expected.item(), rel=1e-5)
    assert 0 < gamma.item() < 1e4
    # graphs kept for the following backward
    (rec + gamma * gan).backward()
    assert decoder.conv_in.weight.grad is not None


def test_adaptive_weight_clamped():
    w = torch.ones(3, requires_grad=True)
    rec = (w * 1e3).sum()
    gan = (w * 1e-9).sum()  # ratio ~ 1e3 / (1e-9 + 1e-4) > 1e4
    assert adaptive_gan_weight(rec, gan, w).item() == 1e4
    assert adaptive_gan_weight(rec, gan, w, max_weight=7.0).item() == 7.0


def test_lpips_missing_weights_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        LPIPSLoss(net='alex')
    msg = str(err.value)
    assert 'alexnet-owt-7be5be79.pth' in msg
    assert osp.join(str(tmp_path), 'hub', 'checkpoints') in msg
    assert '$TORCH_HOME/hub/checkpoints' in msg
    assert 'perceptual_weight=0' in msg
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        LPIPSLoss(net='vgg', checkpoint=missing)


def test_lpips_loads_torchvision_backbone_file(tmp_path):
    from torchvision.models import alexnet
    torch.manual_seed(0)
    features = {
        k: v
        for k, v in alexnet(weights=None).state_dict().items()
        if k.startswith('features.')
    }
    path = tmp_path / 'alexnet-owt-7be5be79.pth'
    torch.save(features, path)
    loss = LPIPSLoss(net='alex', checkpoint=str(path))
    net = loss.network.net
    first, last = net.slice1._modules['0'], net.slice5._modules['10']
    assert torch.equal(first.weight, features['features.0.weight'])
    assert torch.equal(last.bias, features['features.10.bias'])
    # fixed, unsaved, but differentiable w.r.t. the prediction
    assert loss.state_dict() == {} and not list(loss.parameters())
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    dist = loss(pred * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1)
    assert dist.shape == (2, 1, 1, 1)
    dist.sum().backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert loss(pred, pred).abs().max().item() < 1e-6
