"""Data transforms of lmd-toolkit (the ``TRANSFORMS`` registry's location).

The toolkit's datasets read images themselves and hand the pipeline ``img``
as ``(H, W, 3)`` uint8 RGB. The pipelines use mmpretrain's transforms by
their scoped name, e.g. ``dict(type='mmpretrain.RandomResizedCrop',
scale=64)``: under ``default_scope='lmd_toolkit'`` mmengine resolves the
``mmpretrain.`` prefix by itself (it imports ``mmpretrain.registry``, whose
``TRANSFORMS`` imports ``mmpretrain.datasets``); nothing here has to import
mmpretrain. The toolkit's own transforms below are named without a prefix,
e.g. ``dict(type='RandomColorField', prob=0.25)``.
"""
from .checks import ImageTooSmallError, crop_size_of, run_pipeline
from .color import RandomChannelShuffle, RandomColorField

__all__ = [
    'RandomColorField', 'RandomChannelShuffle', 'ImageTooSmallError',
    'crop_size_of', 'run_pipeline'
]
