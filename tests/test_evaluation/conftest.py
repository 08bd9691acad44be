"""Real photographs (shipped in scikit-image) with realistic degradations."""
import io
from typing import Any, Dict, List

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

#: (photo, rows, cols): crops of different sizes, so batches mix shapes.
CROPS = [('astronaut', slice(90, 154), slice(180, 260)),
         ('chelsea', slice(60, 124), slice(150, 246)),
         ('coffee', slice(120, 192), slice(220, 284))]


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format='JPEG', quality=quality)
    return np.asarray(Image.open(buffer).convert('RGB'))


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0,
                                                                 1).float()


@pytest.fixture(scope='session')
def photo_pairs() -> List[Dict[str, Any]]:
    """Every crop with Gaussian noise (unclamped, partly out of [0, 255]),
    blur and JPEG. Each entry holds ``sample`` (a predict-mode dict, float32
    (3, H, W) tensors), ``gt`` and ``pred`` (what the metrics must measure:
    clamped, float64 (H, W, 3)) and ``pred_raw`` (float32, unclamped)."""
    import skimage.data
    rng = np.random.default_rng(0)
    pairs = []
    for name, rows, cols in CROPS:
        gt = np.ascontiguousarray(getattr(skimage.data, name)()[rows, cols])
        noisy = gt + rng.normal(0, 12, gt.shape)
        blurred = ndimage.gaussian_filter(gt.astype(np.float64), (1.2, 1.2, 0))
        jpeg = _jpeg(gt, quality=20)
        for pred in (noisy, blurred, jpeg):
            pred = pred.astype(np.float32)
            pairs.append(
                dict(
                    sample=dict(gt_img=_chw(gt), pred_img=_chw(pred)),
                    gt=gt.astype(np.float64),
                    pred=np.clip(pred, 0, 255).astype(np.float64),
                    pred_raw=pred))
    return pairs
