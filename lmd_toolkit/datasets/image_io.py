"""Robust reading of image files as 8-bit RGB arrays.

Every dataset of the toolkit hands its pipeline ``img`` as an ``(H, W, 3)``
``uint8`` RGB array (mmpretrain's ``LoadImageFromFile`` would give BGR). This
module is the one place that turns a file into such an array:

- RGB is kept; grayscale, palette, bilevel, CMYK, YCbCr, LAB and HSV images
  go through Pillow's ``convert('RGB')``.
- Transparency (RGBA, LA, PA, palette with a transparent colour) is
  composited on a white background, and warns once per file when some pixel
  is not fully opaque.
- 16-bit images (``I;16*``, 16-bit PNG grayscale, RGB or RGBA) are scaled to
  8 bit with rounding, ``v8 = round(v16 * 255 / 65535)`` (65535 -> 255,
  32896 -> 128), and warn once per file. 32-bit float images (mode ``F``) are
  read as values in [0, 1], clipped, and warn once per file.
- The EXIF orientation tag is applied, as phones and cameras expect.
"""
import os
import warnings
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageOps

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                  '.ppm', '.pgm')

# Modes that Pillow converts to RGB without losing what the file means.
_PLAIN_MODES = ('1', 'L', 'P', 'CMYK', 'YCbCr', 'LAB', 'HSV')
# Modes that carry an alpha channel.
_ALPHA_MODES = ('RGBA', 'RGBa', 'LA', 'La', 'PA')
# Modes whose samples are integers wider than 8 bit.
_WIDE_INT_MODES = ('I', 'I;16', 'I;16L', 'I;16B', 'I;16N')

# (path, reason) pairs this process has already warned about.
_WARNED: set = set()


class ImageReadWarning(UserWarning):
    """An image file was skipped, or its pixels were changed on reading."""


def warn_once(path: str, reason: str, message: str) -> None:
    """Warn ``message`` about ``path`` once per process and ``reason``.

    Args:
        path (str): The image file the warning is about.
        reason (str): A short tag, so that a file can warn once per reason.
        message (str): The warning text; it should name ``path``.
    """
    if (path, reason) in _WARNED:
        return
    _WARNED.add((path, reason))
    warnings.warn(message, ImageReadWarning, stacklevel=3)


def has_image_extension(path: str,
                        extensions: Sequence[str] = IMG_EXTENSIONS) -> bool:
    """Return whether ``path`` ends with one of ``extensions``, any case."""
    return path.lower().endswith(tuple(ext.lower() for ext in extensions))


def check_image_header(path: str) -> Optional[str]:
    """Cheaply check that ``path`` looks like an image Pillow can open.

    Only the header is read, not the pixels, so a file that is truncated
    after its header passes here and fails in :func:`read_rgb_image`.

    Args:
        path (str): The file to check.

    Returns:
        Optional[str]: None when the file looks fine, else why it does not.
    """
    try:
        if os.path.getsize(path) == 0:
            return 'the file is empty (0 bytes)'
        with Image.open(path) as img:
            width, height = img.size
    except (OSError, ValueError, SyntaxError, EOFError,
            Image.DecompressionBombError) as error:
        return f'Pillow cannot open it as an image ({error})'
    if width == 0 or height == 0:
        return f'it has no pixels (size {width}x{height})'
    return None


def _to_uint8(values: np.ndarray, max_value: int) -> np.ndarray:
    """Scale integers in [0, max_value] to [0, 255], rounding half up."""
    values = np.clip(values.astype(np.int64), 0, max_value)
    return ((values * 255 + max_value // 2) // max_value).astype(np.uint8)


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blend ``(H, W, 3)`` uint8 colours over white with ``(H, W)`` alpha."""
    rgb = rgb.astype(np.int64)
    alpha = alpha.astype(np.int64)[..., None]
    blended = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


def _is_16bit_png_colour(img: Image.Image) -> bool:
    """Whether Pillow is about to drop the low byte of a 16-bit colour PNG."""
    if img.format != 'PNG' or img.mode not in ('RGB', 'RGBA'):
        return False
    return any(
        str(tile.args).endswith(';16B') or str(tile.args).endswith(';16')
        for tile in img.tile)


def _read_16bit_colour_png(path: str) -> np.ndarray:
    """Read a 16-bit RGB(A) PNG as ``(H, W, 3|4)`` uint16 RGB(A)."""
    import cv2  # opencv-python comes with mmcv(-lite)

    array = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16 or array.ndim != 3:
        raise OSError(f'OpenCV could not read {path!r} as a 16-bit colour PNG')
    # OpenCV orders channels BGR(A).
    order = [2, 1, 0, 3][:array.shape[2]]
    return array[..., order]


def read_rgb_image(path: str) -> np.ndarray:
    """Read an image file as an 8-bit RGB array (see the module docstring).

    Args:
        path (str): The image file.

    Returns:
        np.ndarray: ``(H, W, 3)`` ``uint8`` RGB pixels, C-contiguous and
        writable.

    Raises:
        OSError: The file cannot be decoded (truncated, corrupt, missing).
        ValueError: The image mode is not one this function converts.
    """
    with Image.open(path) as img:
        if _is_16bit_png_colour(img):
            wide = _read_16bit_colour_png(path)
            warn_once(
                path, '16bit', f'{path}: 16-bit image scaled to 8 bit '
                '(v * 255 / 65535, rounded)')
            rgb = _to_uint8(wide[..., :3], 65535)
            if wide.shape[2] == 4:
                alpha = _to_uint8(wide[..., 3], 65535)
                rgb = _read_alpha(path, rgb, alpha)
            return np.ascontiguousarray(rgb)
        img.load()
        img = ImageOps.exif_transpose(img)
        return np.ascontiguousarray(_pil_to_rgb(path, img))


def _read_alpha(path: str, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite on white, warning when some pixel is not opaque."""
    if alpha.min() == 255:
        return rgb
    warn_once(
        path, 'alpha', f'{path}: transparent pixels composited on a white '
        'background')
    return _composite_on_white(rgb, alpha)


def _pil_to_rgb(path: str, img: Image.Image) -> np.ndarray:
    """Convert a decoded Pillow image of any supported mode to uint8 RGB."""
    mode = img.mode
    if mode == 'P' and 'transparency' in img.info:
        img, mode = img.convert('RGBA'), 'RGBA'
    if mode == 'RGB':
        return np.array(img, dtype=np.uint8)
    if mode in _PLAIN_MODES:
        return np.array(img.convert('RGB'), dtype=np.uint8)
    if mode in _ALPHA_MODES:
        rgba = np.array(img.convert('RGBA'), dtype=np.uint8)
        return _read_alpha(path, rgba[..., :3], rgba[..., 3])
    if mode in _WIDE_INT_MODES:
        gray = _to_uint8(np.asarray(img), 65535)
        warn_once(
            path, '16bit', f'{path}: 16-bit image (mode {mode}) scaled to 8 '
            'bit (v * 255 / 65535, rounded)')
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == 'F':
        values = np.nan_to_num(np.asarray(img, dtype=np.float64))
        gray = np.round(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
        warn_once(
            path, 'float', f'{path}: float image (mode F) read as values in '
            '[0, 1] and scaled to 8 bit')
        return np.repeat(gray[..., None], 3, axis=2)
    raise ValueError(f'{path}: image mode {mode!r} is not supported; save '
                     'the file as 8-bit RGB, grayscale or RGBA')
