import os

import pytest
import torch
import torchvision

from lmd_toolkit.evaluation.metrics import LPIPS
from lmd_toolkit.registry import METRICS


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    home = tmp_path / 'torch_home'
    monkeypatch.setenv('TORCH_HOME', str(home))
    return home


def test_lpips_missing_backbone_names_file_folder_and_argument(
        empty_torch_home):
    with pytest.raises(FileNotFoundError) as error:
        METRICS.build(dict(type='LPIPS'))
    message = str(error.value)
    assert 'alexnet-owt-7be5be79.pth' in message
    assert str(empty_torch_home / 'hub' / 'checkpoints') in message
    assert 'backbone_checkpoint' in message
    with pytest.raises(FileNotFoundError, match='vgg16-397923af.pth'):
        LPIPS(net='vgg', backbone_checkpoint=str(empty_torch_home / 'x.pth'))
    with pytest.raises(ValueError, match="'alex'"):
        LPIPS(net='resnet', pnet_rand=True)


def test_lpips_random_backbone_identical_zero_different_positive_symmetric(
        photo_pairs):
    torch.manual_seed(0)
    metric = LPIPS(pnet_rand=True)
    samples = [p['sample'] for p in photo_pairs[:6]]
    identical = [
        dict(gt_img=s['gt_img'], pred_img=s['gt_img'].clone())
        for s in samples
    ]
    swapped = [dict(gt_img=s['pred_img'], pred_img=s['gt_img'])
               for s in samples]
    metric.process(None, identical)
    assert metric.results == [0.0] * 6
    metric.results.clear()
    metric.process(None, samples)
    forward = list(metric.results)
    assert min(forward) > 0
    metric.results.clear()
    metric.process(None, [
        dict(gt_img=s['gt_img'], pred_img=s['pred_img'].clamp(0, 255))
        for s in swapped
    ])
    assert metric.results == pytest.approx(forward, rel=1e-5)
    assert metric.compute_metrics(metric.results)['LPIPS'] == pytest.approx(
        sum(forward) / 6, rel=1e-5)


def test_lpips_loads_torchvision_backbone_from_torch_home(
        empty_torch_home, photo_pairs):
    torch.manual_seed(0)
    features = {
        k: v
        for k, v in torchvision.models.alexnet(
            weights=None).state_dict().items() if k.startswith('features.')
    }
    folder = empty_torch_home / 'hub' / 'checkpoints'
    os.makedirs(folder)
    torch.save(features, folder / 'alexnet-owt-7be5be79.pth')
    metric = LPIPS()
    metric.process(None, [photo_pairs[0]['sample']])
    backbone = metric._model.net
    first_conv = getattr(backbone.slice1, '0')  # torchvision features.0
    last_conv = getattr(backbone.slice5, '10')  # torchvision features.10
    assert torch.equal(first_conv.weight, features['features.0.weight'])
    assert torch.equal(last_conv.bias, features['features.10.bias'])
    assert metric.results[0] > 0

    torch.save({'conv.weight': torch.zeros(1)}, folder / 'wrong.pth')
    wrong = LPIPS(backbone_checkpoint=str(folder / 'wrong.pth'))
    with pytest.raises(KeyError, match='features.0.weight'):
        wrong.process(None, [photo_pairs[0]['sample']])
