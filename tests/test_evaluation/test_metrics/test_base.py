"""ImagePairMetric: the base a new image-quality metric is written on."""
import pytest
import torch

from lmd_toolkit.evaluation.metrics import PSNR, ImagePairMetric


class MeanAbsoluteError(ImagePairMetric):
    """Mean absolute error on [0, 255] (a metric as a user writes one)."""
    name = 'MAE'

    def score(self, pred, gt):
        return (pred - gt).abs().flatten(1).mean(1).tolist()


def test_subclass_scores_every_image_in_order_and_averages():
    g = torch.Generator().manual_seed(0)
    # Two shapes interleaved: stacked per run of one shape, order kept.
    samples = []
    for size in (8, 8, 12, 8):
        gt = torch.rand(3, size, size, generator=g) * 255
        pred = gt + torch.randn(3, size, size, generator=g) * 10
        samples.append(dict(gt_img=gt, pred_img=pred))
    metric = MeanAbsoluteError(prefix='val')
    metric.process({}, samples)
    expected = [(s['pred_img'].clamp(0, 255).double() -
                 s['gt_img'].double()).abs().mean().item() for s in samples]
    assert metric.results == pytest.approx(expected, rel=1e-12)
    assert metric.compute_metrics(metric.results) == {
        'MAE': pytest.approx(sum(expected) / 4, rel=1e-12)
    }
    assert metric.prefix == 'val'


def test_keyword_arguments_reach_the_base_and_typos_are_refused():
    assert PSNR(quantize=True, prefix='p').prefix == 'p'
    with pytest.raises(TypeError, match='prefx'):
        PSNR(prefx='p')
