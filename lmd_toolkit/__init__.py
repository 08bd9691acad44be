import warnings

from .version import __version__

# mmcv-lite has no compiled ops; mmcv warns about one of them on every import
# of mmpretrain. lmd-toolkit never uses it (docs/en/compatibility.md).
warnings.filterwarnings(
    'ignore', message='Fail to import ``MultiScaleDeformableAttention``')

__all__ = ['__version__']
