"""Every registry location imports; every `type` of every config resolves."""
import glob
import importlib
import os.path as osp

import pytest
from mmengine.config import Config

from mmpretrain.registry import BATCH_AUGMENTS as MMPRETRAIN_BATCH_AUGMENTS

from lmd_toolkit import registry
from lmd_toolkit.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True))

register_all_modules()


def test_registries_are_children_with_scope():
    for name in registry.__all__:
        reg = getattr(registry, name)
        assert reg.scope == 'lmd_toolkit', name
        if name == 'MASK_SCHEDULERS':
            assert reg.parent is None
        else:
            assert reg.parent is not None and reg.parent.scope == 'mmengine'


@pytest.mark.parametrize('name', registry.__all__)
def test_locations_import(name):
    for location in getattr(registry, name)._locations:
        importlib.import_module(location)


def collect_types(node, path='cfg'):
    """Yield (path, registry name guess, type) for every dict with a type."""
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield path, node['type']
        for key, value in node.items():
            yield from collect_types(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from collect_types(value, f'{path}[{i}]')


REGISTRY_OF_KEY = [
    # FlexibleRunner's strategy (FSDP) and the wrapper it builds.
    ('strategy.model_wrapper', registry.MODEL_WRAPPERS),
    ('strategy', registry.STRATEGIES),
    # mmpretrain's batch augments (mixup / cutmix) have their own registry.
    ('batch_augments', MMPRETRAIN_BATCH_AUGMENTS),
    ('init_cfg', registry.WEIGHT_INITIALIZERS),
    ('mask_ratio.scheduler', registry.MASK_SCHEDULERS),
    ('hooks', registry.HOOKS),
    ('optimizer', registry.OPTIMIZERS),
    ('optim_wrapper', registry.OPTIM_WRAPPERS),
    ('param_scheduler', registry.PARAM_SCHEDULERS),
    ('pipeline', registry.TRANSFORMS),
    ('sampler', registry.DATA_SAMPLERS),
    ('collate_fn', registry.FUNCTIONS),
    ('dataset', registry.DATASETS),
    ('latent_first', registry.DATASETS),  # datasets/latent_first.py
    ('evaluator', registry.METRICS),
    ('model_wrapper_cfg', registry.MODEL_WRAPPERS),
    ('vis_backends', registry.VISBACKENDS),
    ('visualizer', registry.VISUALIZERS),
    ('train_cfg', registry.LOOPS),
    ('val_cfg', registry.LOOPS),
    ('test_cfg', registry.LOOPS),
    ('model', registry.MODELS),
    ('data_preprocessor', registry.MODELS),
]


def registry_for(path):
    for key, reg in REGISTRY_OF_KEY:
        if key in path:
            return reg
    raise AssertionError(f'no registry known for {path}')


@pytest.mark.parametrize(
    'config', CONFIGS, ids=[osp.relpath(c, ROOT) for c in CONFIGS])
def test_every_type_resolves(config):
    cfg = Config.fromfile(config)
    for path, type_name in collect_types(cfg.to_dict()):
        reg = registry_for(path)
        assert reg.get(type_name) is not None, (
            f'{osp.relpath(config, ROOT)}: {path}.type={type_name!r} is not '
            f'in the {reg.name} registry')
