from .accuracy_time_hook import AccuracyIncreaseTimeHook  # noqa: F401
from .mask_ratio_hook import MaskRatioSchedulerHook, build_mask_scheduler
from .reconstruction_hook import (ReconstructionVisualizationHook,
                                  reconstruction_grid)

__all__ = [
    'MaskRatioSchedulerHook', 'build_mask_scheduler',
    'ReconstructionVisualizationHook', 'reconstruction_grid'
]
