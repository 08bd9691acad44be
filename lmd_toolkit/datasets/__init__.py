"""Datasets: the photos shipped in pip packages and users' image folders.

Both give the pipeline ``img`` as an ``(H, W, 3)`` uint8 RGB array.
``LatentCacheDataset`` serves projector latents encoded once from either.
"""
from .digits import DigitsDataset  # noqa: F401
from .embedded_photos import SOURCES, EmbeddedPhotos, load_photo
from .image_folder import ImageFolderDataset
from .image_io import IMG_EXTENSIONS, ImageReadWarning, read_rgb_image
from .latent_cache import LatentCacheDataset, write_latent_cache

__all__ = [
    'EmbeddedPhotos', 'ImageFolderDataset', 'SOURCES', 'IMG_EXTENSIONS',
    'ImageReadWarning', 'load_photo', 'read_rgb_image', 'LatentCacheDataset',
    'write_latent_cache'
]
