import pytest
import torch

from lmd_toolkit.models import LatentReconstructionHead


def setup_example():
    torch.manual_seed(0)
    z = torch.randn(2, 3, 4, 4)  # p=2 -> L=4 tokens of 12 values
    pred = torch.randn(2, 4, 12)
    mask = torch.tensor([[1., 0., 1., 0.], [0., 0., 0., 1.]])
    return z, pred, mask


def hand_loss(z, pred, mask, norm, eps=1e-6):
    total, count = 0.0, 0
    B, d, h, w = z.shape
    for b in range(B):
        for t in range(4):
            i, j = divmod(t, 2)
            patch = z[b, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
            target = patch.permute(1, 2, 0).reshape(-1).double()
            if norm:
                n = target.numel()
                mean = target.sum() / n
                var = ((target - mean)**2).sum() / (n - 1)  # unbiased
                target = (target - mean) / (var + eps).sqrt()
            if mask[b, t] == 1:
                total += ((pred[b, t].double() - target)**2).mean().item()
                count += 1
    return total / count


@pytest.mark.parametrize('norm', [False, True])
def test_loss_equals_hand_computation(norm):
    z, pred, mask = setup_example()
    head = LatentReconstructionHead(patch_size=2, norm_target=norm)
    assert head.loss(pred, z, mask).item() == pytest.approx(hand_loss(
        z, pred, mask, norm),
                                                            rel=1e-5)


def test_loss_ignores_visible_tokens():
    z, pred, mask = setup_example()
    head = LatentReconstructionHead(patch_size=2)
    base = head.loss(pred, z, mask)
    visible = pred.clone()
    visible[0, 1] += 10.0  # mask[0, 1] == 0
    assert torch.equal(head.loss(visible, z, mask), base)
    masked = pred.clone()
    masked[0, 0] += 10.0  # mask[0, 0] == 1
    assert head.loss(masked, z, mask) > base + 1.0


def test_paste_prediction_inverts_normalisation():
    z, _, mask = setup_example()
    head = LatentReconstructionHead(patch_size=2, norm_target=True)
    perfect = head.construct_target(z)
    torch.testing.assert_close(head.paste_prediction(perfect, z, mask),
                               z,
                               atol=1e-5,
                               rtol=1e-5)
    garbage = torch.full_like(perfect, 100.0)
    pasted = head.paste_prediction(garbage, z, mask)
    # visible token (0, 1) = top-right patch of sample 0 comes from z
    torch.testing.assert_close(pasted[0, :, 0:2, 2:4], z[0, :, 0:2, 2:4])
    assert not torch.allclose(pasted[0, :, 0:2, 0:2], z[0, :, 0:2, 0:2])


def test_shape_mismatch_error():
    z, pred, mask = setup_example()
    with pytest.raises(ValueError, match='patch_size'):
        LatentReconstructionHead(patch_size=2).loss(pred[..., :8], z, mask)
