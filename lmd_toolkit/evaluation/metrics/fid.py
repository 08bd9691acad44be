"""Fréchet distance between feature Gaussians of predictions and targets."""
import logging
import warnings
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from scipy import linalg
from torch import Tensor, nn

from lmd_toolkit.registry import METRICS, MODELS
from .base import ImagePairMetric
from .utils import resolve_weights_file

#: torchvision's file name of the ImageNet Inception-v3 weights.
INCEPTION_FILE = 'inception_v3_google-0cc3c7bd.pth'


def frechet_distance(mu1: np.ndarray,
                     sigma1: np.ndarray,
                     mu2: np.ndarray,
                     sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Squared Fréchet (2-Wasserstein) distance between two Gaussians.

    ``d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 @ sigma2))``.
    When scipy reports the product singular, or its square root is not
    finite, ``eps * I`` is added to both covariances and the root retaken.
    A negligible imaginary part of the root (rounding) is dropped; a
    non-negligible one raises.

    Args:
        mu1 (np.ndarray): ``(D,)`` mean of the first Gaussian.
        sigma1 (np.ndarray): ``(D, D)`` covariance of the first Gaussian.
        mu2 (np.ndarray): ``(D,)`` mean of the second Gaussian.
        sigma2 (np.ndarray): ``(D, D)`` covariance of the second Gaussian.
        eps (float): Diagonal offset used when the product is singular.
            Defaults to 1e-6.

    Returns:
        float: The squared distance (what papers call FID).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(
        mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    dim = mu1.shape[0]
    for name, value, shape in (('mu1', mu1, (dim, )), ('mu2', mu2, (dim, )),
                               ('sigma1', sigma1, (dim, dim)),
                               ('sigma2', sigma2, (dim, dim))):
        if value.shape != shape:
            raise ValueError(f'frechet_distance: {name} has shape '
                             f'{value.shape}, expected {shape} (D = {dim} '
                             'from mu1).')

    def root_of_product(offset: float) -> Tuple[np.ndarray, bool]:
        eye = offset * np.eye(dim)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', linalg.LinAlgWarning)
            root = linalg.sqrtm((sigma1 + eye) @ (sigma2 + eye))
        flagged = any(
            issubclass(w.category, linalg.LinAlgWarning) for w in caught)
        return root, flagged or not np.isfinite(root).all()

    root, unreliable = root_of_product(0.0)
    if unreliable:
        root, unreliable = root_of_product(eps)
        if not np.isfinite(root).all():
            raise FloatingPointError(
                'frechet_distance: sqrtm(sigma1 @ sigma2) is not finite even '
                f'with eps={eps} added to the diagonals; check the features '
                'for NaN/inf or raise eps.')
    if np.iscomplexobj(root):
        imaginary = np.abs(np.diagonal(root).imag).max()
        if imaginary > 1e-3:
            raise ValueError(
                'frechet_distance: sqrtm(sigma1 @ sigma2) has an imaginary '
                f'part of {imaginary:.3g} on its diagonal (> 1e-3); the '
                'covariances are not valid (symmetric positive semi-definite)'
                ' or too ill-conditioned.')
        root = root.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) -
                 2 * np.trace(root))


def gaussian_statistics(features: np.ndarray) -> Tuple[np.ndarray,
                                                       np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of ``(N, D)``
    features (``np.cov(features, rowvar=False)``)."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.atleast_2d(
        np.cov(features, rowvar=False))


class InceptionV3PoolFeatures(nn.Module):
    """torchvision's Inception-v3, 2048-d average-pool features.

    Input ``(B, 3, H, W)`` in [0, 255] is resized to 299x299 (bilinear,
    antialiased), scaled to [-1, 1] (what torchvision's ImageNet weights
    expect after their ``transform_input`` step) and run up to the pool.
    This is not the TF-Inception of the original FID code, so values differ
    from papers' FID.

    Args:
        checkpoint (str): Path of ``inception_v3_google-0cc3c7bd.pth``.
    """

    def __init__(self, checkpoint: str) -> None:
        super().__init__()
        from torchvision.models import inception_v3
        net = inception_v3(
            weights=None,
            aux_logits=True,  # the weights file holds the auxiliary head
            transform_input=False,  # done in forward, as a [-1, 1] scaling
            init_weights=False)
        state = torch.load(checkpoint, map_location='cpu', weights_only=True)
        net.load_state_dict(state)
        net.aux_logits, net.AuxLogits = False, None
        net.fc = nn.Identity()
        self.net = net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> 'InceptionV3PoolFeatures':
        """Stay in eval mode (frozen feature extractor)."""
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` in [0, 255] -> ``(B, 2048)``."""
        x = F.interpolate(
            images.float() / 255,
            size=(299, 299),
            mode='bilinear',
            align_corners=False,
            antialias=True)
        return self.net(x * 2 - 1)


@METRICS.register_module()
class FID(ImagePairMetric):
    """Fréchet inception distance between reconstructions and originals.

    Features of every ``pred_img`` and ``gt_img`` of the evaluated set are
    summarised by their mean and unbiased covariance, and the metric is
    :func:`frechet_distance` of the two Gaussians (lower is better). The
    default extractor is torchvision's Inception-v3 (2048-d pool features,
    inputs resized to 299 and scaled to [-1, 1]), so values are not the
    TF-Inception FID of papers. Use well over D images per set: with fewer
    the covariances are singular and the value is biased. Reference:
    https://arxiv.org/abs/1706.08500

    Args:
        feature_extractor (dict | Callable, optional): Maps a float batch
            ``(B, 3, H, W)`` in [0, 255] to ``(B, D)`` features: a config
            built from ``MODELS`` or a callable / ``nn.Module``. Defaults to
            None (torchvision Inception-v3 pool features).
        inception_checkpoint (str, optional): Path of torchvision's
            ``inception_v3_google-0cc3c7bd.pth``, used when
            ``feature_extractor`` is None. Defaults to None: look in
            ``$TORCH_HOME/hub/checkpoints/``.
        eps (float): Diagonal offset of :func:`frechet_distance` for
            singular covariances. Defaults to 1e-6.

    ``collect_device`` and ``prefix`` (key ``prefix/FID``) as
    :class:`ImagePairMetric`.
    """

    name = 'FID'
    pair_dtype = torch.float32

    def __init__(self,
                 feature_extractor: Optional[Union[dict, Callable]] = None,
                 inception_checkpoint: Optional[str] = None,
                 eps: float = 1e-6,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not (feature_extractor is None or isinstance(
                feature_extractor, dict) or callable(feature_extractor)):
            raise TypeError('FID feature_extractor must be None, a MODELS '
                            'config dict or a callable, got '
                            f'{type(feature_extractor).__name__}.')
        self.feature_extractor = feature_extractor
        self.inception_checkpoint = inception_checkpoint
        self.eps = eps
        self._extractor: Optional[Callable] = None
        if feature_extractor is None:  # fail now, not after an epoch
            self._inception_path()

    def _inception_path(self) -> str:
        return resolve_weights_file(self.inception_checkpoint,
                                    INCEPTION_FILE, 'FID Inception-v3',
                                    'inception_checkpoint')

    def _get_extractor(self, device: torch.device) -> Callable:
        if self._extractor is None:
            if self.feature_extractor is None:
                self._extractor = InceptionV3PoolFeatures(
                    self._inception_path())
            elif isinstance(self.feature_extractor, dict):
                self._extractor = MODELS.build(self.feature_extractor)
            else:
                self._extractor = self.feature_extractor
            if isinstance(self._extractor, nn.Module):
                self._extractor.eval().requires_grad_(False)
        if isinstance(self._extractor, nn.Module):
            self._extractor.to(device)
        return self._extractor

    def _features(self, images: Tensor) -> np.ndarray:
        features = self._get_extractor(images.device)(images)
        if not (isinstance(features, Tensor) and features.dim() == 2
                and features.shape[0] == images.shape[0]):
            got = tuple(features.shape) if isinstance(
                features, Tensor) else type(features).__name__
            raise ValueError('FID feature_extractor must return a (B, D) '
                             f'tensor for a batch of B = {images.shape[0]} '
                             f'images, got {got}.')
        # float32 halves what ranks exchange; statistics are in float64.
        return features.detach().float().cpu().numpy()

    def score(self, pred: Tensor, gt: Tensor) -> List[Tuple[np.ndarray,
                                                            np.ndarray]]:
        """The ``(pred, gt)`` feature vectors of every image."""
        # One forward for both sets: (2B, D) -> B pred rows, B gt rows.
        features = self._features(torch.cat([pred, gt]))
        return list(zip(features[:len(pred)], features[len(pred):]))

    def compute_metrics(
            self, results: List[Tuple[np.ndarray,
                                      np.ndarray]]) -> Dict[str, float]:
        """FID between the pred and gt feature sets of all images."""
        if len(results) < 2:
            raise ValueError(f'FID needs at least 2 images to estimate a '
                             f'covariance, got {len(results)}.')
        pred = np.stack([r[0] for r in results])
        gt = np.stack([r[1] for r in results])
        if len(results) <= pred.shape[1]:
            print_log(
                f'FID: {len(results)} images for {pred.shape[1]}-d features; '
                'the covariances are singular and the FID is biased. Use '
                'more images than feature dimensions.',
                logger='current',
                level=logging.WARNING)
        mu_pred, sigma_pred = gaussian_statistics(pred)
        mu_gt, sigma_gt = gaussian_statistics(gt)
        return {
            'FID':
            frechet_distance(mu_pred, sigma_pred, mu_gt, sigma_gt, self.eps)
        }
