"""Structural similarity (Wang et al. 2004) in torch, scikit-image's way."""
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from lmd_toolkit.registry import METRICS
from .base import ImagePairMetric

#: Gaussian window: sigma 1.5 truncated at 3.5 sigma -> radius 5, 11 taps
#: (scikit-image's choice for ``gaussian_weights=True``, matching the paper).
SIGMA = 1.5
TRUNCATE = 3.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0


def gaussian_window(sigma: float = SIGMA,
                    truncate: float = TRUNCATE,
                    dtype: torch.dtype = torch.float64,
                    device: Optional[torch.device] = None) -> Tensor:
    """Normalised 1-D Gaussian taps, radius ``int(truncate * sigma + 0.5)``
    as ``scipy.ndimage.gaussian_filter``. Returns a ``(2r + 1,)`` tensor."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    taps = torch.exp(-0.5 * (x / sigma)**2)
    return taps / taps.sum()


def structural_similarity(pred: Tensor, gt: Tensor) -> Tensor:
    """Mean SSIM of each image of a batch, channels averaged.

    Local statistics come from a separable Gaussian window (sigma 1.5, 11
    taps) with population (not sample) covariances; the SSIM map is kept only
    where the whole window lies inside the image (a valid convolution, i.e.
    scikit-image's crop of ``(win_size - 1) // 2`` pixels per border).

    Args:
        pred (Tensor): ``(B, C, H, W)`` images in [0, 255].
        gt (Tensor): ``(B, C, H, W)`` images in [0, 255].

    Returns:
        Tensor: ``(B,)`` SSIM values, in the dtype of the inputs.
    """
    b, c, h, w = pred.shape
    taps = gaussian_window(dtype=pred.dtype, device=pred.device)
    win = taps.numel()
    if h < win or w < win:
        raise ValueError(f'SSIM needs images of at least {win}x{win} pixels '
                         f'(its Gaussian window), got {h}x{w}.')
    # The five local moments of every channel, filtered in one go.
    x, y = pred.reshape(b * c, 1, h, w), gt.reshape(b * c, 1, h, w)
    moments = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (BC, 5, H, W)
    moments = F.conv2d(moments, taps.view(1, 1, 1, win).expand(5, 1, 1, win),
                       groups=5)
    moments = F.conv2d(moments, taps.view(1, 1, win, 1).expand(5, 1, win, 1),
                       groups=5)  # (BC, 5, H - win + 1, W - win + 1)
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.unbind(dim=1)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov_xy = e_xy - mu_x * mu_y
    c1, c2 = (K1 * DATA_RANGE)**2, (K2 * DATA_RANGE)**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return ssim_map.reshape(b, c, -1).mean(dim=2).mean(dim=1)


@METRICS.register_module()
class SSIM(ImagePairMetric):
    """Structural similarity index (SSIM), per image, averaged over images.

    Wang et al. 2004 with a Gaussian window (sigma 1.5, 11x11), K1 = 0.01,
    K2 = 0.03, data range 255, population covariances; computed per RGB
    channel and averaged, over the valid region (no padding). Equals
    ``skimage.metrics.structural_similarity(gt, pred, data_range=255,
    channel_axis=0, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`` computed in float64. Images must be at
    least 11x11 and are clamped to [0, 255] first. Reference:
    https://ece.uwaterloo.ca/~z70wang/publications/ssim.pdf

    Args:
        quantize (bool): Round both images to integers after clamping, i.e.
            measure what a saved uint8 PNG would give. Defaults to False.

    ``collect_device`` and ``prefix`` (key ``prefix/SSIM``) as
    :class:`ImagePairMetric`.
    """

    name = 'SSIM'

    def __init__(self, quantize: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.quantize = quantize

    def score(self, pred: Tensor, gt: Tensor) -> List[float]:
        """One SSIM (float) per image; float64, as E[x^2] - E[x]^2 on
        [0, 255] loses digits in float32."""
        return structural_similarity(pred, gt).tolist()
