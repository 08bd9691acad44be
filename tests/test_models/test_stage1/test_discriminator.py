"""PatchGAN discriminator shapes and options."""
import pytest
import torch
import torch.nn as nn

from lmd_toolkit.models.discriminators import NLayerDiscriminator


@pytest.mark.parametrize('n_layers,size,out', [(1, 32, 14), (2, 32, 6),
                                               (3, 64, 6), (3, 256, 30)])
def test_output_shape(n_layers, size, out):
    disc = NLayerDiscriminator(ndf=4, n_layers=n_layers)
    logits = disc(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 1, out, out)


def test_layout_batch_and_group_norm():
    disc = NLayerDiscriminator(ndf=8, n_layers=3)
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert [c.kernel_size for c in convs] == [(4, 4)] * 5
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 1]
    # convs followed by BatchNorm have no bias
    assert [c.bias is not None for c in convs] == [True, False, False, False,
                                                   True]
    acts = [m for m in disc.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 4 and all(a.negative_slope == 0.2 for a in acts)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in disc.modules()) == 3

    group = NLayerDiscriminator(ndf=8, n_layers=3, norm='group', num_groups=4)
    assert sum(isinstance(m, nn.GroupNorm) for m in group.modules()) == 3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in group.modules())
    # GroupNorm: a sample's logits do not depend on the rest of the batch
    x = torch.randn(3, 3, 32, 32)
    assert torch.allclose(group(x)[:1], group(x[:1]), atol=1e-5)


def test_bad_options():
    with pytest.raises(ValueError, match="norm must be one of"):
        NLayerDiscriminator(norm='instance')
    with pytest.raises(ValueError, match='num_groups=32'):
        NLayerDiscriminator(ndf=8, norm='group')
