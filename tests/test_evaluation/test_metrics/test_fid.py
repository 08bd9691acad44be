import os

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from lmd_toolkit.evaluation.metrics import FID, frechet_distance
from lmd_toolkit.evaluation.metrics.fid import gaussian_statistics
from lmd_toolkit.registry import MODELS


def closed_form(mu1, sigma1, mu2, sigma2):
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), via eigh."""

    def psd_sqrt(matrix):
        values, vectors = linalg.eigh(matrix)
        return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T

    root1 = psd_sqrt(sigma1)
    cross = psd_sqrt(root1 @ sigma2 @ root1)
    diff = mu1 - mu2
    return diff @ diff + np.trace(sigma1 + sigma2 - 2 * cross)


def random_gaussian(rng, dim, scale=1.0):
    a = rng.normal(size=(dim, dim))
    return rng.normal(size=dim) * scale, scale**2 * (a @ a.T / dim +
                                                     0.1 * np.eye(dim))


def image_samples(pred_features, gt_features):
    """Images (3, 1, 2) whose pixels are 6-d feature vectors."""
    return [
        dict(pred_img=torch.tensor(p, dtype=torch.float32).view(3, 1, 2),
             gt_img=torch.tensor(g, dtype=torch.float32).view(3, 1, 2))
        for p, g in zip(pred_features, gt_features)
    ]


def flatten(images):
    return images.flatten(1)


class RandomConvFeatures(nn.Module):
    """A fixed random conv + ReLU + average pool: (B, 3, H, W) -> (B, 8)."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 5, stride=2)
        with torch.no_grad():
            self.conv.weight.copy_(
                torch.randn(self.conv.weight.shape, generator=generator) / 20)
            self.conv.bias.zero_()

    def forward(self, images):
        return self.conv(images / 255).relu().mean(dim=(2, 3))


def test_frechet_distance_equals_closed_form_and_is_symmetric():
    rng = np.random.default_rng(0)
    mu1, sigma1 = random_gaussian(rng, 5)
    mu2, sigma2 = random_gaussian(rng, 5, scale=2)
    value = frechet_distance(mu1, sigma1, mu2, sigma2)
    assert value == pytest.approx(
        closed_form(mu1, sigma1, mu2, sigma2), rel=1e-9)
    assert frechet_distance(mu2, sigma2, mu1, sigma1) == pytest.approx(
        value, rel=1e-9)
    assert frechet_distance(mu1, sigma1, mu1, sigma1) == pytest.approx(
        0, abs=1e-9)
    # One dimension: (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance(np.array([1.]), np.array([[4.]]), np.array([3.]),
                            np.array([[9.]])) == pytest.approx(5)
    with pytest.raises(ValueError, match='sigma2'):
        frechet_distance(mu1, sigma1, mu2, sigma2[:4, :4])


def test_frechet_distance_handles_singular_covariance():
    rng = np.random.default_rng(1)
    few = rng.normal(size=(4, 10))  # 4 samples in 10-d: rank 3
    other = rng.normal(size=(4, 10)) + 1
    mu1, sigma1 = gaussian_statistics(few)
    mu2, sigma2 = gaussian_statistics(other)
    assert np.linalg.matrix_rank(sigma1) == 3
    value = frechet_distance(mu1, sigma1, mu2, sigma2)
    assert np.isfinite(value)
    assert value == pytest.approx(
        closed_form(mu1, sigma1, mu2, sigma2), rel=1e-3)
    assert abs(frechet_distance(mu1, sigma1, mu1, sigma1)) < 1e-6 * np.trace(
        sigma1)


def test_fid_of_sampled_gaussians_equals_closed_form_of_samples():
    rng = np.random.default_rng(2)
    mu1, sigma1 = random_gaussian(rng, 6, scale=8)
    mu2, sigma2 = random_gaussian(rng, 6, scale=12)
    pred = rng.multivariate_normal(mu1 + 120, sigma1, size=300)
    gt = rng.multivariate_normal(mu2 + 130, sigma2, size=300)
    assert pred.min() > 0 and gt.max() < 255  # no clamping in the metric
    # The metric sees float32 images; its statistics are in float64.
    pred = pred.astype(np.float32).astype(np.float64)
    gt = gt.astype(np.float32).astype(np.float64)
    metric = FID(feature_extractor=flatten)
    samples = image_samples(pred, gt)
    for start in range(0, len(samples), 64):
        metric.process(None, samples[start:start + 64])
    value = metric.compute_metrics(metric.results)['FID']
    expected = closed_form(pred.mean(0), np.cov(pred, rowvar=False),
                           gt.mean(0), np.cov(gt, rowvar=False))
    assert value == pytest.approx(expected, rel=1e-7)

    swapped = FID(feature_extractor=flatten)
    swapped.process(None, image_samples(gt, pred))
    assert swapped.compute_metrics(swapped.results)['FID'] == pytest.approx(
        value, rel=1e-9)


def test_frechet_distance_of_samples_approaches_analytic_value():
    rng = np.random.default_rng(3)
    mu1, sigma1 = random_gaussian(rng, 3)
    mu2, sigma2 = random_gaussian(rng, 3, scale=1.5)
    analytic = closed_form(mu1, sigma1, mu2, sigma2)
    errors = []
    for n in (100, 30000):
        a = rng.multivariate_normal(mu1, sigma1, size=n)
        b = rng.multivariate_normal(mu2, sigma2, size=n)
        errors.append(
            abs(frechet_distance(*gaussian_statistics(a),
                                 *gaussian_statistics(b)) - analytic))
    assert errors[1] < 0.02 * analytic
    assert errors[1] < errors[0]


def test_fid_of_a_set_with_itself_is_zero(photo_pairs):
    metric = FID(feature_extractor=RandomConvFeatures())
    samples = [
        dict(gt_img=p['sample']['gt_img'], pred_img=p['sample']['gt_img'])
        for p in photo_pairs
    ]
    metric.process(None, samples)
    gt_features = np.stack([r[1] for r in metric.results])
    scale = np.trace(np.cov(gt_features, rowvar=False))
    assert abs(metric.compute_metrics(metric.results)['FID']) < 1e-6 * scale


def test_fid_rises_with_noise_level():
    import skimage.data
    photos = [skimage.data.astronaut(), skimage.data.chelsea(),
              skimage.data.coffee()]
    crops = torch.stack([
        torch.from_numpy(photo[r:r + 32, c:c + 32].copy()).permute(2, 0, 1)
        for photo in photos for r in range(0, 288, 48)
        for c in range(0, 288, 96)
    ]).float()  # (54, 3, 32, 32)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(crops.shape, generator=generator)
    extractor = RandomConvFeatures()
    values = []
    for sigma in (0, 4, 12, 30, 60):
        metric = FID(feature_extractor=extractor)
        metric.process(None, [
            dict(gt_img=gt, pred_img=pred)
            for gt, pred in zip(crops, crops + sigma * noise)
        ])
        values.append(metric.compute_metrics(metric.results)['FID'])
    assert abs(values[0]) < 1e-9
    assert all(a < b for a, b in zip(values, values[1:])), values


@pytest.fixture
def registered_mean_colour():

    class MeanColourFeatures(nn.Module):

        def forward(self, images):
            return images.mean(dim=(2, 3))

    MODELS.register_module(name='_TestMeanColourFeatures',
                           module=MeanColourFeatures)
    yield
    MODELS._module_dict.pop('_TestMeanColourFeatures')


def test_fid_builds_extractor_from_config_and_checks_its_output(
        registered_mean_colour):
    rng = np.random.default_rng(4)
    images = rng.uniform(0, 255, size=(20, 3, 4, 4)).astype(np.float32)
    metric = FID(feature_extractor=dict(type='_TestMeanColourFeatures'))
    samples = [
        dict(gt_img=torch.from_numpy(x), pred_img=torch.from_numpy(x) * 0.5)
        for x in images
    ]
    metric.process(None, samples)
    means = images.mean(axis=(2, 3)).astype(np.float64)
    expected = closed_form(means.mean(0) * 0.5, np.cov(means * 0.5,
                                                       rowvar=False),
                           means.mean(0), np.cov(means, rowvar=False))
    assert metric.compute_metrics(
        metric.results)['FID'] == pytest.approx(expected, rel=1e-5)

    with pytest.raises(ValueError, match=r'\(B, D\)'):
        FID(feature_extractor=lambda x: x).process(None, samples[:2])
    with pytest.raises(ValueError, match='at least 2 images'):
        metric.compute_metrics(metric.results[:1])


def test_fid_default_inception_missing_weights_and_plumbing(
        tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        FID()
    message = str(error.value)
    assert 'inception_v3_google-0cc3c7bd.pth' in message
    assert str(tmp_path / 'hub' / 'checkpoints') in message
    assert 'inception_checkpoint' in message

    # Random weights in torchvision's layout: checks loading and shapes.
    from torchvision.models import inception_v3
    torch.manual_seed(0)
    folder = tmp_path / 'hub' / 'checkpoints'
    os.makedirs(folder)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    torch.save(net.state_dict(), folder / 'inception_v3_google-0cc3c7bd.pth')
    metric = FID()
    image = torch.rand(3, 40, 48) * 255
    metric.process(None, [dict(gt_img=image, pred_img=image.flip(2))])
    pred_features, gt_features = metric.results[0]
    assert pred_features.shape == gt_features.shape == (2048, )
    assert not np.allclose(pred_features, gt_features, rtol=1e-3, atol=0)
    with torch.no_grad():
        net.eval().fc = nn.Identity()
        expected = net(
            torch.nn.functional.interpolate(
                image[None] / 255, (299, 299),
                mode='bilinear',
                antialias=True) * 2 - 1)[0]
    expected = expected.double().numpy()
    np.testing.assert_allclose(
        gt_features, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
