"""lmd_toolkit.apis.sample: the progressive unmasking sampler."""
import pytest
import torch

from lmd_toolkit.apis import build_mask_scheduler, masked_counts, sample
from lmd_toolkit.engine.mask_schedulers import (CosineMaskRatio,
                                                UniformMaskRatio)
from lmd_toolkit.models.layers import patchify

L = 64


def expected_count(ratio):
    return L - int(L * (1 - ratio))


@pytest.mark.parametrize('scheduler', [
    UniformMaskRatio(0.15, 0.75),
    CosineMaskRatio(0.15, 0.75),
])
def test_counts_follow_reversed_schedule(scheduler):
    steps = 6
    counts = masked_counts(scheduler, steps, L)
    rho = [scheduler.ratio(steps - 1 - k, steps) for k in range(steps)]
    assert counts == [expected_count(r) for r in rho] + [0]
    assert counts == sorted(counts, reverse=True)
    # a fully masked start replaces only the first count
    full = masked_counts(scheduler, steps, L, start=L)
    assert full[0] == L and full[1:] == counts[1:]
    # a small start never grows
    small = masked_counts(scheduler, steps, L, start=5)
    assert small == [5] + [min(5, c) for c in counts[1:]]


def test_sampler_reveals_exactly_the_schedule(pixel_model, images):
    sched = UniformMaskRatio(0.15, 0.75)
    steps = 5
    out = sample(pixel_model, images, steps=steps, scheduler=sched, seed=1)
    counts = out['counts']
    assert counts == masked_counts(sched, steps, L)
    prev = out['start_mask']
    for k, step in enumerate(out['steps']):
        assert step['mask'].sum(1).tolist() == [float(counts[k])] * 3
        assert step['num_revealed'] == counts[k] - counts[k + 1]
        assert torch.equal(step['mask'], prev)
        nxt = out['steps'][k + 1]['mask'] if k + 1 < steps else \
            torch.zeros_like(prev)
        revealed = prev - nxt
        assert revealed.min() >= 0  # only removed tokens get revealed
        assert revealed.sum(1).tolist() == [float(step['num_revealed'])] * 3
        prev = nxt


def test_visible_tokens_are_kept_and_predictions_fed_back(pixel_model, images):
    out = sample(pixel_model,
                 images,
                 start_ratio=0.5,
                 steps=3,
                 scheduler='UniformMaskRatio',
                 seed=0)
    visible = out['start_mask'] == 0  # (B, L)
    final = patchify(out['images'].float(), 8)
    source = patchify(images.float(), 8)
    assert torch.equal(final[visible], source[visible])
    # a token revealed at step 0 keeps step 0's prediction to the end
    m0, m1 = out['steps'][0]['mask'], out['steps'][1]['mask']
    first = (m0 - m1) > 0
    est0 = patchify(out['steps'][0]['pred_latent'], 8)
    assert torch.equal(patchify(out['pred_latent'], 8)[first], est0[first])


def test_fully_masked_generation_is_deterministic(pixel_model):
    a = sample(pixel_model, None, num_samples=2, steps=4, seed=5)
    b = sample(pixel_model, None, num_samples=2, steps=4, seed=5, batch_size=1)
    c = sample(pixel_model, None, num_samples=2, steps=4, seed=6)
    assert a['counts'][0] == L
    assert a['steps'][0]['ratio'] == 1.0
    assert torch.equal(a['images'], b['images'])
    assert not torch.equal(a['images'], c['images'])
    assert a['images'].shape == (2, 3, 64, 64)
    assert len(a['steps'][0]['images']) == 2


def test_start_above_max_ratio_warns(pixel_model, images):
    with pytest.warns(UserWarning, match='max_ratio'):
        sample(pixel_model,
               images,
               start_ratio=0.9,
               steps=2,
               scheduler='UniformMaskRatio',
               decode_intermediates=False)


def test_user_mask_start(pixel_model, images):
    mask = torch.zeros(8, 8)
    mask[2:5, 2:5] = 1
    out = sample(pixel_model,
                 images,
                 mask=mask,
                 steps=2,
                 scheduler='UniformMaskRatio')
    assert out['counts'][0] == 9
    assert torch.equal(out['start_mask'], mask.flatten().expand(3, -1))


def test_errors(pixel_model, images):
    with pytest.raises(ValueError,
                       match=r"unknown mask scheduler 'Nope'.*"
                       r'CosineMaskRatio.*UniformMaskRatio'):
        build_mask_scheduler('Nope')
    with pytest.raises(ValueError, match='steps must be a positive'):
        sample(pixel_model, images, steps=0)
    with pytest.raises(ValueError, match='same number of removed'):
        bad = torch.zeros(3, L)
        bad[0, :4] = 1
        sample(pixel_model, images, mask=bad)
    with pytest.raises(ValueError, match='without images'):
        sample(pixel_model, None, start_ratio=0.5)


def test_norm_target_fully_masked_is_refused(pixel_model, images):
    head = pixel_model.head
    head.norm_target = True
    try:
        with pytest.raises(ValueError, match='norm_target=True'):
            sample(pixel_model, None, steps=2)
        out = sample(pixel_model,
                     images,
                     start_ratio=0.5,
                     steps=2,
                     decode_intermediates=False)  # stats of visible patches
        assert torch.isfinite(out['pred_latent']).all()
    finally:
        head.norm_target = False


def test_default_scheduler_comes_from_the_config(pixel_model):
    sched = build_mask_scheduler(None, pixel_model)
    assert isinstance(sched, CosineMaskRatio)
    assert (sched.min_ratio, sched.max_ratio) == (0.15, 0.75)
