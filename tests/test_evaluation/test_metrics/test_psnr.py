import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from skimage.metrics import peak_signal_noise_ratio

from lmd_toolkit.evaluation.metrics import PSNR
from lmd_toolkit.registry import METRICS


def run_metric(metric, samples, batch_size=4):
    for start in range(0, len(samples), batch_size):
        metric.process(None, samples[start:start + batch_size])
    return metric.compute_metrics(metric.results)


def test_psnr_matches_skimage_on_photos(photo_pairs):
    metric = METRICS.build(dict(type='PSNR'))
    result = run_metric(metric, [p['sample'] for p in photo_pairs])
    expected = [
        peak_signal_noise_ratio(p['gt'], p['pred'], data_range=255)
        for p in photo_pairs
    ]
    np.testing.assert_allclose(metric.results, expected, rtol=0, atol=1e-4)
    assert result['PSNR'] == pytest.approx(np.mean(expected), abs=1e-4)
    # The noisy prediction is partly out of range: clamping must matter.
    raw = photo_pairs[0]['pred_raw'].astype(np.float64)
    assert raw.min() < 0 and raw.max() > 255
    assert peak_signal_noise_ratio(
        photo_pairs[0]['gt'], raw, data_range=255) != pytest.approx(
            expected[0], abs=1e-3)


def test_psnr_quantize_matches_skimage_on_uint8(photo_pairs):
    metric = PSNR(quantize=True)
    run_metric(metric, [p['sample'] for p in photo_pairs])
    expected = [
        peak_signal_noise_ratio(
            p['gt'].astype(np.uint8),
            np.round(p['pred']).astype(np.uint8),
            data_range=255) for p in photo_pairs
    ]
    np.testing.assert_allclose(metric.results, expected, rtol=0, atol=1e-4)
    float_metric = PSNR()
    run_metric(float_metric, [p['sample'] for p in photo_pairs])
    assert not np.allclose(metric.results, float_metric.results, atol=1e-4)


def test_psnr_identical_images_is_inf(photo_pairs):
    sample = photo_pairs[0]['sample']
    same = dict(gt_img=sample['gt_img'], pred_img=sample['gt_img'].clone())
    metric = PSNR()
    metric.process(None, [same])
    assert metric.compute_metrics(metric.results) == {'PSNR': math.inf}
    metric.process(None, [sample])
    assert math.isinf(metric.compute_metrics(metric.results)['PSNR'])


def test_psnr_through_evaluator_with_prefix(photo_pairs):
    samples = [p['sample'] for p in photo_pairs[:4]]
    with DefaultScope.overwrite_default_scope('lmd_toolkit'):
        evaluator = Evaluator([dict(type='PSNR', prefix='val')])
    evaluator.process(samples)
    metrics = evaluator.evaluate(len(samples))
    expected = np.mean([
        peak_signal_noise_ratio(p['gt'], p['pred'], data_range=255)
        for p in photo_pairs[:4]
    ])
    assert list(metrics) == ['val/PSNR']
    assert metrics['val/PSNR'] == pytest.approx(expected, abs=1e-4)


def test_psnr_rejects_bad_samples():
    image = torch.zeros(3, 16, 16)
    with pytest.raises(KeyError, match='pred_img'):
        PSNR().process(None, [dict(gt_img=image)])
    with pytest.raises(ValueError, match='must match'):
        PSNR().process(None,
                       [dict(gt_img=image, pred_img=torch.zeros(3, 16, 8))])
    with pytest.raises(ValueError, match=r'\(3, H, W\)'):
        PSNR().process(None,
                       [dict(gt_img=image[None], pred_img=image[None])])
