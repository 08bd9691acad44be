"""Registries of lmd-toolkit.

Every registry the mmengine ``Runner`` builds from has a child here with scope
``lmd_toolkit``; configs set ``default_scope='lmd_toolkit'`` so that ``type=``
names resolve here first and fall back to mmengine's. ``MASK_SCHEDULERS`` has
no parent: the Runner never builds mask schedulers, the
``MaskRatioSchedulerHook`` does.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import INFERENCERS as MMENGINE_INFERENCERS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'TASK_UTILS', 'METRICS',
    'EVALUATOR', 'VISUALIZERS', 'VISBACKENDS', 'FUNCTIONS', 'INFERENCERS',
    'STRATEGIES', 'MASK_SCHEDULERS'
]

# Runners, runner constructors and loops: mmengine's are enough.
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS)
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor', parent=MMENGINE_RUNNER_CONSTRUCTORS)
LOOPS = Registry('loop', parent=MMENGINE_LOOPS)
# Hooks such as MaskRatioSchedulerHook and the reconstruction-grid hook.
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, locations=['lmd_toolkit.engine.hooks'])
LOG_PROCESSORS = Registry('log processor', parent=MMENGINE_LOG_PROCESSORS)
# Optimizers and wrappers: mmengine's, torch's and (scoped) mmpretrain's.
OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS, locations=['lmd_toolkit.engine'])
OPTIM_WRAPPERS = Registry(
    'optim wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    locations=['lmd_toolkit.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optim wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS)
# Datasets: the embedded photos, image folders, later the latent cache.
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, locations=['lmd_toolkit.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMENGINE_DATA_SAMPLERS)
# Data transforms of the dataset pipelines.
TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    locations=['lmd_toolkit.datasets.transforms'])
# Algorithms, projectors, backbones, decoders (necks), heads, preprocessors.
MODELS = Registry(
    'model', parent=MMENGINE_MODELS, locations=['lmd_toolkit.models'])
# Model wrappers, e.g. the DDP wrapper that also works on CPU (gloo).
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    locations=['lmd_toolkit.engine'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS)
TASK_UTILS = Registry('task util', parent=MMENGINE_TASK_UTILS)
# Metrics: reconstruction quality, training efficiency.
METRICS = Registry(
    'metric', parent=MMENGINE_METRICS, locations=['lmd_toolkit.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR)
# Visualizers and their storage backends.
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS)
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS)
# Plain functions a config can name, e.g. collate functions.
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS)
# FlexibleRunner's training strategies (FSDP); mmengine looks them up in its
# root registry, so configs name ours with the scope: 'lmd_toolkit.<Name>'.
STRATEGIES = Registry(
    'strategy', parent=MMENGINE_STRATEGIES, locations=['lmd_toolkit.engine'])
INFERENCERS = Registry('inferencer', parent=MMENGINE_INFERENCERS)

# Mask-ratio schedulers: pure functions of (global iteration, total
# iterations). Parentless: only MaskRatioSchedulerHook builds them. Third
# parties register theirs with ``@MASK_SCHEDULERS.register_module()``.
MASK_SCHEDULERS = Registry(
    'mask scheduler',
    scope='lmd_toolkit',
    locations=['lmd_toolkit.engine.mask_schedulers'])
