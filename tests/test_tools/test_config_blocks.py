"""The config blocks of configs/_base_ that the tools merge instead of
rewriting configs in code: mixed precision (--amp), iteration budgets
(set_budget), the training-efficiency hook (tools/reproduce.py); and the
leaf-depth rule of configs/."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper, build_optim_wrapper
from torch import nn

from lmd_toolkit.engine.optim_wrappers import AutocastOptimWrapper
from lmd_toolkit.utils import register_all_modules
from lmd_toolkit.utils.launch import AMP_BLOCK, load_block, merge_amp_block

register_all_modules()

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs')


def fake_machine(monkeypatch, cuda: bool, bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported',
                        lambda including_emulation=True: bf16)


def amp_wrapper(**extra):
    cfg = Config(dict(optim_wrapper=dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3),
        clip_grad=dict(max_norm=3.0), **extra)))
    merge_amp_block(cfg)
    assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=3.0)  # kept
    return build_optim_wrapper(nn.Linear(2, 2), cfg.optim_wrapper)


@pytest.mark.parametrize('cuda,bf16', [(False, False), (True, True)])
def test_amp_block_is_bf16_autocast_on_cpu_and_bf16_gpus(
        monkeypatch, cuda, bf16):
    fake_machine(monkeypatch, cuda, bf16)
    wrapper = amp_wrapper()
    assert type(wrapper) is AutocastOptimWrapper
    assert wrapper.cast_dtype == torch.bfloat16
    assert wrapper.clip_grad_kwargs == dict(max_norm=3.0)


def test_amp_block_is_fp16_loss_scaling_on_older_gpus(monkeypatch):
    fake_machine(monkeypatch, cuda=True, bf16=False)
    built = {}
    # AmpOptimWrapper itself needs a real GPU: record what it is given.
    monkeypatch.setattr(
        'lmd_toolkit.engine.optim_wrappers.AmpOptimWrapper',
        lambda **kwargs: built.setdefault('amp', kwargs))
    amp_wrapper()
    assert built['amp']['dtype'] == 'float16'
    assert built['amp']['loss_scale'] == 'dynamic'
    assert AmpOptimWrapper  # the class the block stands for


def test_amp_block_is_what_the_flag_merges():
    block = Config.fromfile(AMP_BLOCK)
    assert block.to_dict() == dict(
        optim_wrapper=dict(type='MixedPrecisionOptimWrapper'))
    cfg = Config(dict(optim_wrapper=dict(type='AutocastOptimWrapper',
                                         dtype='bfloat16')))
    merge_amp_block(cfg)  # a configured mixed-precision wrapper is kept
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    cfg.optim_wrapper.type = 'SomeOtherWrapper'
    with pytest.raises(ValueError, match='SomeOtherWrapper'):
        merge_amp_block(cfg)


def test_load_block_sets_one_number_and_refuses_unknown_names(tmp_path):
    block = tmp_path / 'block.py'
    block.write_text('n = 10\nhalf = n // 2\n')
    assert load_block(str(block)).half == 5
    assert load_block(str(block), n=40).half == 20
    with pytest.raises(KeyError, match='no top-level m'):
        load_block(str(block), m=3)


def config_parents(path: str) -> list:
    """The files ``path`` lists in ``_base_`` (absolute paths)."""
    import ast
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if (isinstance(node, ast.Assign)
                and getattr(node.targets[0], 'id', None) == '_base_'):
            bases = ast.literal_eval(node.value)
            bases = [bases] if isinstance(bases, str) else bases
            return [
                osp.normpath(osp.join(osp.dirname(path), b)) for b in bases
            ]
    return []


def is_base(path: str) -> bool:
    return '_base_' in osp.relpath(path, CONFIGS).split(osp.sep)


LEAVES = sorted(
    p for p in glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True)
    if not is_base(p))


def test_the_rule_walks_every_leaf():
    assert len(LEAVES) > 20
    assert osp.join(CONFIGS, 'lmd_vit-h_in1k_cs.py') in LEAVES


@pytest.mark.parametrize('leaf', LEAVES,
                         ids=[osp.relpath(p, CONFIGS) for p in LEAVES])
def test_a_leaf_inherits_at_most_one_leaf_of_base_files_only(leaf):
    """A leaf may inherit one other leaf, and that one only _base_ files:
    no leaf -> leaf -> leaf chains."""
    parents = config_parents(leaf)
    assert all(osp.isfile(p) for p in parents), parents
    leaf_parents = [p for p in parents if not is_base(p)]
    assert len(leaf_parents) <= 1, leaf_parents
    for parent in leaf_parents:
        grand = [p for p in config_parents(parent) if not is_base(p)]
        assert not grand, (f'{osp.relpath(leaf, CONFIGS)} inherits '
                           f'{osp.relpath(parent, CONFIGS)}, which inherits '
                           f'the leaf {osp.relpath(grand[0], CONFIGS)}')


@pytest.mark.parametrize('max_iters,warmup', [(2, 1), (40, 2), (333, 16),
                                              (5000, 250)])
def test_budget_block_gives_the_schedule_set_budget_wrote(max_iters, warmup):
    """The values lmd_toolkit.apis.pipelines.set_budget wrote in code before
    the budget became configs/_base_/schedules/iter_budget.py."""
    from lmd_toolkit.apis.pipelines import set_budget
    cfg = set_budget(
        Config.fromfile(osp.join(CONFIGS, 'lmd_vit-tiny_pixel_photos_cs.py')),
        max_iters)
    assert cfg.train_cfg.to_dict() == dict(
        type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
    assert [dict(s) for s in cfg.param_scheduler] == [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
             end=warmup),
        dict(type='CosineAnnealingLR', T_max=max_iters - warmup,
             eta_min=1e-5, by_epoch=False, begin=warmup, end=max_iters),
    ]
    hooks = cfg.default_hooks
    assert hooks.checkpoint.interval == max_iters
    assert hooks.visualization.interval == max_iters
    # about 10 lines, never more often than the config's 50 iterations
    assert hooks.logger.interval == max(1, min(50, max_iters // 10))
    assert hooks.mask_ratio.scheduler.type == 'CosineMaskRatio'


def test_budget_block_leaves_absent_hooks_absent():
    from lmd_toolkit.apis.pipelines import set_budget
    cfg = set_budget(
        Config.fromfile(osp.join(
            CONFIGS, 'time_to_accuracy', 'mae_vit-tiny_pixel_digits.py')),
        100)
    assert cfg.default_hooks.checkpoint is None  # the config has none
    assert 'visualization' not in cfg.default_hooks
    assert cfg.train_cfg.max_iters == 100


@pytest.mark.parametrize('max_iters,window,skip_first',
                         [(2, 2, 1), (40, 2, 2), (100, 5, 5),
                          (2000, 100, 10)])
def test_efficiency_block_follows_the_run_length(max_iters, window,
                                                 skip_first):
    """max(2, T // 20) and min(10, max(1, T // 20)), as tools/reproduce.py
    computed them in code before."""
    hooks = load_block(osp.join(CONFIGS, '_base_', 'efficiency.py'),
                       max_iters=max_iters).custom_hooks
    assert [dict(h) for h in hooks] == [
        dict(type='TrainingEfficiencyHook', window=window,
             skip_first=skip_first)
    ]


def test_efficiency_block_builds_and_is_what_reproduce_adds():
    from lmd_toolkit.registry import HOOKS
    import importlib.util
    block = Config.fromfile(osp.join(CONFIGS, '_base_', 'efficiency.py'))
    hook = HOOKS.build(block.custom_hooks[0])
    assert type(hook).__name__ == 'TrainingEfficiencyHook'
    assert (hook.window, hook.skip_first) == (100, 10)  # max_iters = 2000
    spec = importlib.util.spec_from_file_location(
        'reproduce_blocks', osp.join(ROOT, 'tools', 'reproduce.py'))
    reproduce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reproduce)
    assert reproduce.EFFICIENCY_BLOCK == osp.join(CONFIGS, '_base_',
                                                  'efficiency.py')


@pytest.mark.parametrize('image_block', [
    'embedded_photos.py', 'in1k_pretrain.py', 'lsun_bedroom_pretrain.py'
])
def test_latent_blocks_wrap_their_image_block_unchanged(image_block):
    # The *_latent.py blocks read the image dataset from their base
    # (_base_.train_dataloader.dataset): the wrapped dataset is that dataset
    # to the letter, in the cache settings of latent_first.py.
    folder = osp.join(CONFIGS, '_base_', 'datasets')
    images = Config.fromfile(osp.join(folder, image_block))
    latent = Config.fromfile(
        osp.join(folder, image_block.replace('.py', '_latent.py')))
    request = Config.fromfile(osp.join(folder, 'latent_first.py'))
    wrapped = latent.train_dataloader.dataset
    assert wrapped.dataset.to_dict() == \
        images.train_dataloader.dataset.to_dict()
    assert wrapped.type == 'LatentCacheDataset'
    for key, value in request.latent_first.items():
        assert wrapped[key] == value, key
    # The loader around it is the image block's (batch, sampler, workers).
    loader = {k: v for k, v in latent.train_dataloader.items()
              if k != 'dataset'}
    assert loader == {k: v for k, v in images.train_dataloader.items()
                      if k != 'dataset'}


def test_split_blocks_differ_from_training_only_where_stated():
    # digits.py / embedded_photos.py / in1k_finetune.py derive the
    # validation dataset from the training one in their own file.
    folder = osp.join(CONFIGS, '_base_', 'datasets')
    for block, changed in [('digits.py', {'split'}),  # one pipeline
                           ('embedded_photos.py',
                            {'split', 'pipeline', 'num_crops'}),
                           ('in1k_finetune.py', {'split', 'pipeline'})]:
        cfg = Config.fromfile(osp.join(folder, block))
        train = cfg.train_dataloader.dataset.to_dict()
        val = cfg.val_dataloader.dataset.to_dict()
        assert {k for k in train if train[k] != val.get(k)} == changed, block
        assert (train['split'], val['split']) == ('train', 'val')
    finetune = Config.fromfile(osp.join(folder, 'in1k_finetune.py'))
    assert finetune.val_dataloader.sampler.shuffle is False
    assert finetune.val_dataloader.num_workers == 8
    linprobe = Config.fromfile(osp.join(folder, 'in1k_linprobe.py'))
    assert [t['type'] for t in linprobe.train_pipeline] == [
        'mmpretrain.LoadImageFromFile', 'mmpretrain.RandomResizedCrop',
        'mmpretrain.RandomFlip', 'mmpretrain.PackInputs'
    ]
