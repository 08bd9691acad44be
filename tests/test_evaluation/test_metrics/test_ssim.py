import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity as skimage_ssim

from lmd_toolkit.evaluation.metrics import SSIM, structural_similarity
from lmd_toolkit.evaluation.metrics.ssim import gaussian_window
from lmd_toolkit.registry import METRICS

SKIMAGE_ARGS = dict(
    data_range=255,
    gaussian_weights=True,
    sigma=1.5,
    use_sample_covariance=False)


def test_gaussian_window_equals_scipy_gaussian_filter():
    impulse = np.zeros(31)
    impulse[15] = 1
    expected = ndimage.gaussian_filter1d(impulse, 1.5, truncate=3.5)
    taps = gaussian_window().numpy()
    assert taps.shape == (11, )
    np.testing.assert_allclose(taps, expected[10:21], atol=1e-15)
    assert expected[:10].max() == 0 and expected[21:].max() == 0


def test_ssim_matches_skimage_on_photos(photo_pairs):
    metric = METRICS.build(dict(type='SSIM'))
    samples = [p['sample'] for p in photo_pairs]
    for start in range(0, len(samples), 4):  # batches mixing image sizes
        metric.process(None, samples[start:start + 4])
    result = metric.compute_metrics(metric.results)
    expected = [
        skimage_ssim(p['gt'], p['pred'], channel_axis=-1, **SKIMAGE_ARGS)
        for p in photo_pairs
    ]
    # Sanity: the degradations span a wide range of SSIM.
    assert min(expected) < 0.6 and max(expected) > 0.8
    np.testing.assert_allclose(metric.results, expected, rtol=0, atol=1e-4)
    assert result['SSIM'] == pytest.approx(np.mean(expected), abs=1e-4)


def test_ssim_channels_first_reference_and_quantize(photo_pairs):
    metric = SSIM(quantize=True)
    metric.process(None, [p['sample'] for p in photo_pairs])
    expected = [
        skimage_ssim(
            p['gt'].transpose(2, 0, 1).astype(np.uint8),
            np.round(p['pred']).astype(np.uint8).transpose(2, 0, 1),
            channel_axis=0,
            **SKIMAGE_ARGS) for p in photo_pairs
    ]
    np.testing.assert_allclose(metric.results, expected, rtol=0, atol=1e-4)


def test_ssim_identical_is_one_and_symmetric(photo_pairs):
    gt = photo_pairs[0]['sample']['gt_img'][None].double()
    pred = photo_pairs[0]['sample']['pred_img'][None].double().clamp(0, 255)
    assert structural_similarity(gt, gt).item() == pytest.approx(1, abs=1e-12)
    assert structural_similarity(pred, gt).item() == pytest.approx(
        structural_similarity(gt, pred).item(), abs=1e-12)
    assert structural_similarity(pred, gt).item() < 0.9


def test_ssim_rejects_images_smaller_than_window():
    image = torch.zeros(3, 10, 32)
    with pytest.raises(ValueError, match='11x11'):
        SSIM().process(None, [dict(gt_img=image, pred_img=image)])
