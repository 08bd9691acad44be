"""Image-quality metrics (mmengine ``BaseMetric``) of reconstructions."""
from .base import ImagePairMetric
from .fid import (FID, InceptionV3PoolFeatures, frechet_distance,
                  gaussian_statistics)
from .lpips_metric import LPIPS
from .psnr import PSNR
from .ssim import SSIM, structural_similarity

__all__ = [
    'ImagePairMetric', 'PSNR', 'SSIM', 'structural_similarity', 'LPIPS',
    'FID',
    'frechet_distance', 'gaussian_statistics', 'InceptionV3PoolFeatures'
]
