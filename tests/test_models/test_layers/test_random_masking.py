import pytest
import torch

from lmd_toolkit.models.layers import random_masking


@pytest.mark.parametrize('ratio', [0.0, 0.15, 0.4, 0.5, 0.75, 0.9])
def test_keeps_exact_count_and_mask_marks_removed(ratio):
    B, L, C = 3, 49, 5
    x = torch.arange(B * L, dtype=torch.float32).reshape(B, L, 1)
    x = x.expand(B, L, C).contiguous()
    g = torch.Generator().manual_seed(0)
    kept, mask, ids_restore = random_masking(x, ratio, g)
    K = int(L * (1 - ratio))
    assert kept.shape == (B, K, C)
    assert mask.shape == ids_restore.shape == (B, L)
    assert torch.all(mask.sum(1) == L - K)
    for b in range(B):
        kept_idx = kept[b, :, 0].long() - b * L
        # kept tokens are exactly those with mask 0
        assert torch.all(mask[b, kept_idx] == 0)
        assert set(kept_idx.tolist()) == set(
            torch.nonzero(mask[b] == 0).flatten().tolist())


def test_ids_restore_unshuffles():
    B, L, C = 2, 16, 3
    x = torch.randn(B, L, C)
    g = torch.Generator().manual_seed(123)
    kept, mask, ids_restore = random_masking(x, 0.5, g)
    filler = torch.full((B, L - kept.shape[1], C), float('nan'))
    full = torch.cat([kept, filler], 1)
    restored = torch.gather(full, 1, ids_restore[..., None].expand(-1, -1, C))
    visible = mask == 0
    torch.testing.assert_close(restored[visible], x[visible])
    assert torch.isnan(restored[~visible]).all()


def test_generator_makes_masks_reproducible_and_per_sample():
    x = torch.randn(4, 64, 2)
    m1 = random_masking(x, 0.5, torch.Generator().manual_seed(7))[1]
    m2 = random_masking(x, 0.5, torch.Generator().manual_seed(7))[1]
    assert torch.equal(m1, m2)
    assert not torch.equal(m1[0], m1[1])  # independent per sample


@pytest.mark.parametrize('ratio', [-0.1, 1.0, 1.5])
def test_invalid_ratio(ratio):
    with pytest.raises(ValueError, match=repr(ratio)):
        random_masking(torch.randn(1, 4, 2), ratio)

def test_per_sample_generators_make_masks_independent_of_batching():
    x = torch.randn(3, 16, 4)

    def gens(indices):
        return [torch.Generator().manual_seed(100 + i) for i in indices]

    _, mask_all, _ = random_masking(x, 0.5, gens([0, 1, 2]))
    _, mask_one, _ = random_masking(x[1:2], 0.5, gens([1]))
    assert torch.equal(mask_all[1:2], mask_one)
    assert not torch.equal(mask_all[0], mask_all[1])
    with pytest.raises(ValueError, match='got 2 generators for a batch of 3'):
        random_masking(x, 0.5, gens([0, 1]))


def test_seeded_generators_depend_on_seed_and_index_only():
    from lmd_toolkit.models.layers import seeded_generators

    def draw(seed, indices):
        return [torch.rand(4, generator=g) for g in seeded_generators(
            seed, indices)]

    a = draw(7, [0, 1, 2])
    assert torch.equal(draw(7, [2])[0], a[2])  # batching does not matter
    assert not torch.equal(draw(8, [0])[0], a[0])  # the seed does
    assert not torch.equal(a[0], a[1])
