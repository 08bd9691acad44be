from .accuracy_time_hook import AccuracyIncreaseTimeHook  # noqa: F401
from .efficiency_hook import TrainingEfficiencyHook
from .latent_cache_hook import LatentCacheHook
from .mask_ratio_hook import MaskRatioSchedulerHook, build_mask_scheduler
from .reconstruction_hook import (ReconstructionVisualizationHook,
                                  reconstruction_grid)
from .sample_grid_hook import SampleGridHook

__all__ = [
    'MaskRatioSchedulerHook', 'build_mask_scheduler',
    'ReconstructionVisualizationHook', 'reconstruction_grid',
    'SampleGridHook', 'TrainingEfficiencyHook', 'LatentCacheHook'
]
