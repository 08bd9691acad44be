from .accuracy_time_hook import AccuracyIncreaseTimeHook  # noqa: F401
from .checkpoint_hook import CheckpointHook
from .efficiency_hook import TrainingEfficiencyHook
from .latent_cache_hook import LatentCacheHook
from .mask_ratio_hook import MaskRatioSchedulerHook, build_mask_scheduler
from .non_finite_guard_hook import NonFiniteGuardHook, NonFiniteTrainingError
from .resume_hook import ResumeConfigError, ResumeHook
from .reconstruction_hook import (ReconstructionVisualizationHook,
                                  reconstruction_grid)
from .sample_grid_hook import SampleGridHook

__all__ = [
    'MaskRatioSchedulerHook', 'build_mask_scheduler',
    'ReconstructionVisualizationHook', 'reconstruction_grid',
    'SampleGridHook', 'TrainingEfficiencyHook', 'LatentCacheHook',
    'CheckpointHook', 'NonFiniteGuardHook', 'NonFiniteTrainingError',
    'ResumeHook', 'ResumeConfigError'
]
