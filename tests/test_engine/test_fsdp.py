"""FSDP through mmengine's FlexibleRunner (configs/_base_/strategies/fsdp.py)
on two CPU processes with gloo, against the same run under DDP.

One pair of processes runs, one after the other, the tiny config under DDP
for 5 iterations, the same under FSDP (checkpoints at 3 and 5), and the FSDP
run resumed from its iteration-3 checkpoint. The tests then compare, in this
process: the weights, the parameters each rank held, the logged mask ratios
and learning rates of the resumed run, ``tools/test.py`` on both
checkpoints, and a single-process resume of the FSDP checkpoint.
"""
import json
import os
import os.path as osp
import socket
import sys

import pytest
import torch
import torch.multiprocessing as mp

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
TINY = osp.join(ROOT, 'tests', 'data', 'tiny_lmd_photos.py')
TINY_FSDP = osp.join(ROOT, 'tests', 'data', 'tiny_lmd_photos_fsdp.py')
sys.path.insert(0, osp.join(ROOT, 'tests', 'test_reliability'))
from reliability_helpers import load, load_tool, train_here  # noqa: E402
from tool_helpers import train_scalars  # noqa: E402

pytestmark = pytest.mark.usefixtures('single_thread')

OPTIONS = dict(train_cfg=dict(max_iters=5, val_interval=5),
               default_hooks=dict(checkpoint=dict(interval=3),
                                  visualization=dict(interval=4)))


def _offload_demo() -> dict:
    """Two ranks: FSDP's full optimizer-state gather of CPU tensors with
    ``offload_to_cpu=True`` (mmengine's ``'full'``) and without (the
    toolkit's on CPU), against Adam on the unsharded module."""
    import copy

    from torch.distributed.fsdp import FullOptimStateDictConfig
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType

    from lmd_toolkit.engine.strategies import LMDFullyShardedDataParallel
    torch.manual_seed(0)
    plain = torch.nn.Linear(4, 3)
    model = LMDFullyShardedDataParallel(copy.deepcopy(plain), device_id=0)
    reference = _adam_after_one_step(plain).state[plain.weight]
    optimizer = _adam_after_one_step(model)

    def gathered(offload: bool) -> dict:
        with FSDP.state_dict_type(
                model, StateDictType.FULL_STATE_DICT,
                FullStateDictConfig(rank0_only=False),
                FullOptimStateDictConfig(offload_to_cpu=offload,
                                         rank0_only=False)):
            return FSDP.optim_state_dict(model, optimizer)['state']['weight']

    broken, fixed = gathered(True), gathered(False)
    return dict(
        offload_equal=torch.equal(broken['exp_avg'], broken['exp_avg_sq']),
        fixed_matches=all(
            torch.allclose(fixed[k].reshape(reference[k].shape),
                           reference[k], atol=1e-7)
            for k in ('exp_avg', 'exp_avg_sq')))


def _worker(rank: int, port: int, root: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
                      MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      CUDA_VISIBLE_DEVICES='')
    torch.set_num_threads(1)
    sys.path.insert(0, ROOT)
    from lmd_toolkit.utils.compat import init_cpu_distributed
    from lmd_toolkit.utils.launch import (build_runner, destroy_distributed,
                                          load_config)
    record = {}
    init_cpu_distributed('pytorch')
    record['offload'] = _offload_demo()
    with_cp = dict(OPTIONS, model=dict(backbone=dict(with_cp=True),
                                       neck=dict(with_cp=True)))
    runs = [('ddp', TINY, None, OPTIONS), ('fsdp', TINY_FSDP, None, OPTIONS),
            ('resumed', TINY_FSDP, osp.join(root, 'fsdp', 'iter_3.pth'),
             OPTIONS), ('fsdp_cp', TINY_FSDP, None, with_cp)]
    for name, config, resume_from, options in runs:
        cfg = load_config(config, options, 'pytorch', osp.join(root, name))
        cfg.experiment_name = f'{name}_run'
        if resume_from:
            cfg.load_from, cfg.resume = resume_from, True
        runner = build_runner(cfg)
        runner.train()
        trainable = [p for p in runner.model.parameters() if p.requires_grad]
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        units = [m.module for m in FSDP.fsdp_modules(runner.model)]
        record[name] = dict(
            units=sorted(type(m).__name__ for m in units),
            runner=type(runner).__name__,
            wrapper=type(runner.model).__name__,
            local_trainable=sum(p.numel() for p in trainable),
            # (mmengine adds a one-element frozen tensor for logging base_lr)
            optimizer_params=sum(
                p.numel() for g in runner.optim_wrapper.param_groups
                for p in g['params'] if p.requires_grad))
    with open(osp.join(out, f'rank{rank}.json'), 'w') as f:
        json.dump(record, f)
    destroy_distributed()


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('fsdp'))
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, root, root), nprocs=2, join=True)
    records = []
    for rank in range(2):
        with open(osp.join(root, f'rank{rank}.json')) as f:
            records.append(json.load(f))
    return root, records


def test_cpu_optimizer_state_gather_needs_the_offload_shim(runs):
    """torch 2.14's FSDP with offload_to_cpu=True on CPU tensors returns one
    reused buffer (exp_avg == exp_avg_sq); LMDFSDPStrategy turns the offload
    off without CUDA, and the gathered state is Adam's."""
    _, records = runs
    for record in records:
        assert record['offload'] == dict(offload_equal=True,
                                         fixed_matches=True)


def test_fsdp_matches_ddp_and_shards_the_parameters(runs):
    root, records = runs
    assert records[0]['ddp']['runner'] == 'Runner'
    assert records[0]['fsdp']['runner'] == 'FlexibleRunner'
    assert records[0]['fsdp']['wrapper'] == 'LMDFullyShardedDataParallel'
    # One FSDP unit per transformer block (2 encoder + 1 decoder) + the root.
    assert records[0]['fsdp']['units'] == [
        'Block', 'Block', 'Block', 'LatentMaskingDiffusion']
    ddp = load(osp.join(root, 'ddp', 'iter_5.pth'))['state_dict']
    fsdp = load(osp.join(root, 'fsdp', 'iter_5.pth'))['state_dict']
    # The FSDP checkpoint is the full state dict under the DDP names.
    assert set(fsdp) == set(ddp)
    start = load(osp.join(root, 'fsdp', 'iter_3.pth'))['state_dict']
    assert not torch.equal(start['backbone.blocks.0.attn.qkv.weight'],
                           fsdp['backbone.blocks.0.attn.qkv.weight'])
    for key in ddp:
        assert fsdp[key].shape == ddp[key].shape, key
        torch.testing.assert_close(fsdp[key], ddp[key], atol=1e-5, rtol=0,
                                   msg=key)
    total = records[0]['ddp']['local_trainable']
    held = [r['fsdp']['local_trainable'] for r in records]
    # Each rank holds its half of every flat parameter (padding aside).
    assert sum(held) == total
    assert all(abs(h - total / 2) <= 0.02 * total for h in held), held
    # The optimizer holds the shards of the trainable parameters only.
    assert [r['fsdp']['optimizer_params'] for r in records] == held
    # The same losses, and clip_grad's norm is the whole gradient's, as
    # under DDP (not a shard's).
    logs = [train_scalars(osp.join(root, run)) for run in ('ddp', 'fsdp')]
    for key in ('loss', 'grad_norm'):
        assert [r[key] for r in logs[1]] == pytest.approx(
            [r[key] for r in logs[0]], rel=1e-5), key
    # The reconstruction grid of iteration 4 (weights gathered to rank 0).
    assert osp.isfile(osp.join(root, 'fsdp', 'reconstructions', 'iter_4.png'))


def test_activation_checkpointing_under_fsdp_changes_nothing(runs):
    root, _ = runs
    plain = load(osp.join(root, 'fsdp', 'iter_5.pth'))['state_dict']
    with_cp = load(osp.join(root, 'fsdp_cp', 'iter_5.pth'))['state_dict']
    for key in plain:
        torch.testing.assert_close(with_cp[key], plain[key], atol=1e-6,
                                   rtol=0, msg=key)


def test_fsdp_resume_continues_ratio_lr_and_weights(runs):
    root, _ = runs
    unbroken = {r['step']: r for r in train_scalars(osp.join(root, 'fsdp'))}
    resumed = {r['step']: r for r in train_scalars(osp.join(root, 'resumed'))}
    assert sorted(resumed) == [4, 5]
    for step in (4, 5):
        for key in ('mask_ratio', 'lr', 'loss'):
            assert resumed[step][key] == pytest.approx(
                unbroken[step][key], rel=1e-6, abs=1e-9), (step, key)
    ratios = [unbroken[step]['mask_ratio'] for step in sorted(unbroken)]
    assert ratios == sorted(ratios) and ratios[0] < ratios[-1]
    a = load(osp.join(root, 'fsdp', 'iter_5.pth'))
    b = load(osp.join(root, 'resumed', 'iter_5.pth'))
    for key in a['state_dict']:
        torch.testing.assert_close(b['state_dict'][key],
                                   a['state_dict'][key], atol=1e-6, rtol=0)
    assert b['optimizer']['state'][0]['step'] == a['optimizer']['state'][0][
        'step']


def _test_tool_psnr(checkpoint, work_dir, monkeypatch) -> float:
    tool = load_tool('tools/test.py', 'lmd_test_tool')
    monkeypatch.setattr(sys, 'argv', [
        'test.py', TINY_FSDP, checkpoint, '--work-dir', str(work_dir)])
    tool.main()
    with open(osp.join(str(work_dir), 'test_results.json')) as f:
        return json.load(f)['metrics']['PSNR']


def test_fsdp_checkpoint_evaluates_like_the_ddp_one(runs, tmp_path,
                                                     monkeypatch):
    root, _ = runs
    fsdp = _test_tool_psnr(osp.join(root, 'fsdp', 'iter_5.pth'),
                           tmp_path / 'fsdp', monkeypatch)
    ddp = _test_tool_psnr(osp.join(root, 'ddp', 'iter_5.pth'),
                          tmp_path / 'ddp', monkeypatch)
    assert fsdp == pytest.approx(ddp, abs=1e-3)
    assert 5 < fsdp < 60


def test_single_process_resumes_an_fsdp_checkpoint(runs, tmp_path,
                                                   monkeypatch):
    """The plain Runner (no FSDP) resumes the FSDP run's iteration-3
    checkpoint: the optimizer state follows each parameter's name although
    the DDP layout also lists the frozen parameters."""
    root, _ = runs
    options = ['train_cfg.max_iters=5', 'train_cfg.val_interval=5',
               'default_hooks.checkpoint.interval=3',
               'default_hooks.visualization.interval=4']
    # One process instead of two: the world size differs, on purpose.
    train_here(tmp_path, options,
               args=['--resume', osp.join(root, 'fsdp', 'iter_3.pth'),
                     '--resume-with-changes'],
               monkeypatch=monkeypatch, config=TINY)
    steps = [r['step'] for r in train_scalars(str(tmp_path))]
    assert steps == [4, 5]
    resumed = load(str(tmp_path / 'iter_5.pth'))['optimizer']
    # Adam's step counts continued from 3 (a fresh optimizer would say 2).
    counts = {float(s['step']) for s in resumed['state'].values()}
    assert counts == {5.0}


def test_fsdp_config_trains_in_one_process(tmp_path, monkeypatch):
    """``python tools/train.py FSDP_CONFIG`` without a launcher: a process
    group of one, FlexibleRunner, a checkpoint in the unsharded layout."""
    train_here(tmp_path, ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                          'default_hooks.checkpoint.interval=2',
                          'default_hooks.visualization.interval=100'],
               monkeypatch=monkeypatch, config=TINY_FSDP)
    assert not torch.distributed.is_initialized()  # torn down at the end
    checkpoint = load(str(tmp_path / 'iter_2.pth'))
    assert all(isinstance(k, int) for k in checkpoint['optimizer']['state'])
    names = [n for g in checkpoint['resume_state']['optimizer_params']
             for n in g]
    assert 'backbone.blocks.0.attn.qkv.weight' in names
    assert 'backbone.pos_embed' not in names  # frozen: not in the optimizer


def _optimizer(params):
    return torch.optim.AdamW(params, lr=0.1)


def test_optimizer_state_follows_parameter_names_across_groupings():
    """A state saved by an optimizer of the trainable parameters (FSDP) loads
    into one that also lists a frozen parameter (and the reverse)."""
    from lmd_toolkit.utils.state_dict import relayout_optimizer_state
    torch.manual_seed(0)
    frozen = torch.nn.Parameter(torch.ones(3), requires_grad=False)
    a, b = torch.nn.Parameter(torch.randn(2)), torch.nn.Parameter(
        torch.randn(4))
    trained = _optimizer([{'params': [a]}, {'params': [b],
                                           'weight_decay': 0.0}])
    (a.sum() + b.pow(2).sum()).backward()
    trained.step()
    saved, saved_names = trained.state_dict(), [['a'], ['b']]
    target = _optimizer([{'params': [frozen, a, b]}])
    relaid = relayout_optimizer_state(saved, saved_names, target,
                                      [['frozen', 'a', 'b']])
    target.load_state_dict(relaid)
    assert frozen not in target.state
    assert torch.equal(target.state[b]['exp_avg'],
                       trained.state[b]['exp_avg'])
    assert torch.equal(target.state[a]['exp_avg_sq'],
                       trained.state[a]['exp_avg_sq'])
    # Back again: the frozen entry is dropped, the hyper-parameters kept.
    back = relayout_optimizer_state(target.state_dict(),
                                    [['frozen', 'a', 'b']], trained,
                                    saved_names)
    assert back['param_groups'][1]['params'] == [1]
    assert torch.equal(back['state'][1]['exp_avg'],
                       trained.state[b]['exp_avg'])
    with pytest.raises(ValueError, match="parameter\\(s\\) this optimizer "
                       'does not have: b'):
        relayout_optimizer_state(saved, saved_names, _optimizer([a]), [['a']])


def test_named_and_positional_optimizer_layouts_round_trip():
    from lmd_toolkit.engine.strategies import (_named_to_positional,
                                               _positional_to_named)
    names = [['x.weight', 'x.bias'], ['y.weight']]
    named = dict(state={'y.weight': {'step': 2}, 'x.weight': {'step': 1}},
                 param_groups=[dict(lr=0.1, params=['x.weight', 'x.bias']),
                               dict(lr=0.2, params=['y.weight'])])
    positional = _named_to_positional(named, names)
    assert positional == dict(
        state={0: {'step': 1}, 2: {'step': 2}},
        param_groups=[dict(lr=0.1, params=[0, 1]),
                      dict(lr=0.2, params=[2])])
    assert _positional_to_named(positional, names) == named
    with pytest.raises(ValueError, match='groups of sizes \\[2, 1\\]'):
        _positional_to_named(positional, [['x.weight'], ['y.weight']])


@pytest.fixture
def one_process_group():
    from lmd_toolkit.utils.compat import init_single_process_group
    assert init_single_process_group()
    yield
    torch.distributed.destroy_process_group()


def _adam_after_one_step(model):
    optimizer = _optimizer(model.parameters())
    model(torch.ones(2, 4)).square().sum().backward()
    optimizer.step()
    return optimizer


def test_fsdp_shims_are_needed_and_work(one_process_group):
    """Shim 7 (docs/en/compatibility.md): what mmengine's FSDP path does on
    CPU with torch 2.14, next to the toolkit's wrapper (the optimizer-state
    gather is checked on two processes, in ``_offload_demo``)."""
    from mmengine.model import MMFullyShardedDataParallel
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import StateDictType

    from lmd_toolkit.engine.strategies import LMDFullyShardedDataParallel
    # mmengine's strategy passes device_id=LOCAL_RANK, a CUDA index.
    with pytest.raises((RuntimeError, AssertionError, ValueError)):
        MMFullyShardedDataParallel(torch.nn.Linear(4, 3), device_id=0)
    model = LMDFullyShardedDataParallel(torch.nn.Linear(4, 3), device_id=0)
    optimizer = _adam_after_one_step(model)
    # mmengine's load_optim_state_dict passes torch 2.0's argument order.
    optimizer = _adam_after_one_step(model)
    with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT):
        named = FSDP.optim_state_dict(model, optimizer)
        with pytest.raises(TypeError):
            FSDP.optim_state_dict_to_load(named, model, optimizer)
        FSDP.optim_state_dict_to_load(model=model, optim=optimizer,
                                      optim_state_dict=named)


def test_a_strategy_without_the_flexible_runner_is_refused():
    from mmengine.config import Config

    from lmd_toolkit.utils.validate import ConfigValueError, check_config
    cfg = Config.fromfile(TINY_FSDP)
    check_config(cfg, 'train')
    cfg.runner_type = None  # the FSDP block would be ignored by Runner
    with pytest.raises(ConfigValueError,
                       match="runner_type.*'FlexibleRunner'.*strategies/"
                       'fsdp.py'):
        check_config(cfg, 'train')


def test_frozen_projector_is_left_out_of_fsdp_and_the_optimizer(
        one_process_group):
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper

    from lmd_toolkit.engine.strategies import LMDFullyShardedDataParallel
    from lmd_toolkit.registry import MODELS
    cfg = Config.fromfile(
        osp.join(ROOT, 'tests', 'data', 'tiny_lmd_klvae_photos.py'))
    model = MODELS.build(cfg.model)
    shapes = {n: p.shape for n, p in model.projector.named_parameters()}
    assert shapes  # a real (tiny) KL-VAE with weights
    wrapped = LMDFullyShardedDataParallel(model, device_id=0)
    projector = wrapped.module.projector
    # Not flattened into an FSDP parameter: whole, frozen, on every rank.
    assert {n: p.shape for n, p in projector.named_parameters()} == shapes
    assert not any(p.requires_grad for p in projector.parameters())
    assert projector in wrapped._ignored_modules
    optim_cfg = dict(cfg.optim_wrapper,
                     constructor='lmd_toolkit.TrainableParamsOptimWrapperConstructor')
    optimizer = build_optim_wrapper(wrapped, optim_cfg).optimizer
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g['params']}
    assert not in_optimizer & {id(p) for p in projector.parameters()}
    assert id(wrapped.module.neck.mask_token) in in_optimizer


def test_fsdp_checkpoint_converts_and_inits_like_the_ddp_one(runs, tmp_path):
    """The converter and ``init_model`` read an FSDP checkpoint as a DDP
    one: the same keys come out, with the FSDP run's weights."""
    from lmd_toolkit.apis import init_model
    root, _ = runs
    converter = load_tool('tools/model_converters/lmd_to_mmpretrain.py',
                          'lmd_converter')
    converted = {}
    for run in ('ddp', 'fsdp'):
        dst = str(tmp_path / f'{run}_cls.pth')
        assert converter.main([osp.join(root, run, 'iter_5.pth'), dst]) == 0
        converted[run] = load(dst)['state_dict']
    assert converted['fsdp'].keys() == converted['ddp'].keys()
    assert any(k.startswith('backbone.encoder.') for k in converted['fsdp'])
    checkpoint = osp.join(root, 'fsdp', 'iter_5.pth')
    model = init_model(TINY_FSDP, checkpoint)
    weights = load(checkpoint)['state_dict']
    assert torch.equal(model.neck.mask_token, weights['neck.mask_token'])
