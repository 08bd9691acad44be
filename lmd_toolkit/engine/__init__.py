from .hooks import *  # noqa: F401,F403
from .mask_schedulers import (BaseMaskRatio, CosineMaskRatio, FixedMaskRatio,
                              PiecewiseMaskRatio, UniformMaskRatio)
from .model_wrappers import AutoencoderDataParallel, LMDDistributedDataParallel
from .optim_wrappers import AutocastOptimWrapper
from .optimizers import Adan
from .strategies import (LMDFSDPStrategy, LMDFullyShardedDataParallel,
                         TrainableParamsOptimWrapperConstructor)

__all__ = [
    'BaseMaskRatio', 'CosineMaskRatio', 'FixedMaskRatio',
    'PiecewiseMaskRatio', 'UniformMaskRatio', 'LMDDistributedDataParallel',
    'AutoencoderDataParallel', 'AutocastOptimWrapper', 'Adan',
    'LMDFSDPStrategy', 'LMDFullyShardedDataParallel',
    'TrainableParamsOptimWrapperConstructor'
]
