"""lmd_toolkit.Adan (multi-tensor) against a plain per-tensor reference."""
import copy
import math

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torch import nn

from lmd_toolkit.engine.optimizers import Adan
from lmd_toolkit.registry import OPTIMIZERS
from lmd_toolkit.utils import register_all_modules

register_all_modules()

TOL = 1e-6  # the bound; float32 rounding alone gives ~1e-7 here


def reference_adan(params, grads_per_step, groups, betas, eps, no_prox):
    """Adan written out from the paper's update, one tensor at a time.

    ``groups`` gives (lr, weight_decay) for each parameter.
    """
    b1, b2, b3 = betas
    params = [p.clone() for p in params]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    n = [torch.zeros_like(p) for p in params]
    prev = [None] * len(params)
    for k, grads in enumerate(grads_per_step, start=1):
        for i, (p, g) in enumerate(zip(params, grads)):
            lr, wd = groups[i]
            g_prev = g if prev[i] is None else prev[i]
            diff = g - g_prev
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * diff
            n[i] = b3 * n[i] + (1 - b3) * (g + b2 * diff)**2
            m_hat = m[i] / (1 - b1**k)
            v_hat = v[i] / (1 - b2**k)
            n_hat = n[i] / (1 - b3**k)
            step = (m_hat + b2 * v_hat) / (n_hat.sqrt() + eps)
            if no_prox:
                params[i] = p * (1 - lr * wd) - lr * step
            else:
                params[i] = (p - lr * step) / (1 + lr * wd)
            prev[i] = g.clone()
    return params


def make_problem(num_steps=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(16, 8), (8, ), (3, 4, 5), (7, ), (1, 1, 12)]
    params = [torch.randn(s, generator=gen) for s in shapes]
    # Gradients of varied scale, so that the gradient differences matter.
    grads = [[torch.randn(s, generator=gen) * 10**(-k % 3) for s in shapes]
             for k in range(num_steps)]
    return params, grads


def run_adan(params, grads_per_step, group_cfgs, **kwargs):
    """group_cfgs: list of (indices, dict of group options)."""
    tensors = [nn.Parameter(p.clone()) for p in params]
    groups = [
        dict(params=[tensors[i] for i in idx], **opts)
        for idx, opts in group_cfgs
    ]
    opt = Adan(groups, **kwargs)
    for grads in grads_per_step:
        for t, g in zip(tensors, grads):
            t.grad = g.clone()
        opt.step()
    return [t.detach() for t in tensors], opt


@pytest.mark.parametrize('foreach', [True, False])
@pytest.mark.parametrize('no_prox', [False, True])
def test_matches_reference_with_decay_and_no_decay_groups(foreach, no_prox):
    params, grads = make_problem(num_steps=6)
    lr, wd, betas, eps = 0.01, 0.05, (0.98, 0.92, 0.90), 1e-8
    # One group per parameter (as mmengine's paramwise constructor makes),
    # two of them without weight decay, one with another lr.
    group_cfgs = [([0], {}), ([1], dict(weight_decay=0.0)), ([2], {}),
                  ([3], dict(weight_decay=0.0)), ([4], dict(lr=0.003))]
    got, _ = run_adan(params,
                      grads,
                      group_cfgs,
                      lr=lr,
                      betas=betas,
                      eps=eps,
                      weight_decay=wd,
                      no_prox=no_prox,
                      foreach=foreach)
    per_param = [(lr, wd), (lr, 0.0), (lr, wd), (lr, 0.0), (0.003, wd)]
    want = reference_adan(params, grads, per_param, betas, eps, no_prox)
    for g, w, p in zip(got, want, params):
        assert (w - p).abs().max() > 10 * TOL  # the parameters did move
        torch.testing.assert_close(g, w, rtol=0, atol=TOL)


def test_foreach_in_chunks_matches_reference(monkeypatch):
    # Runs of at most 50 elements: several tensors per call, and tensors
    # larger than a run alone.
    from lmd_toolkit.engine import optimizers
    monkeypatch.setattr(optimizers, '_CHUNK_NUMEL', 50)
    params, grads = make_problem(num_steps=4, seed=3)
    got, _ = run_adan(params,
                      grads, [([0, 1, 2, 3, 4], {})],
                      lr=0.01,
                      weight_decay=0.05)
    want = reference_adan(params, grads, [(0.01, 0.05)] * 5,
                          (0.98, 0.92, 0.99), 1e-8, False)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=TOL)
    runs = optimizers._chunks(([p for p in params], ), 50)
    # 128 = 50 + 50 + 28 and 60 = 50 + 10 (flat views); small ones grouped.
    sizes = [[p.numel() for p in run[0]] for run in runs]
    assert sizes == [[50], [50], [28, 8], [50], [10, 7, 12]]


def test_foreach_buckets_across_param_groups():
    params, grads = make_problem(num_steps=1)
    tensors = [nn.Parameter(p) for p in params]
    groups = [
        dict(params=[t], weight_decay=0.0 if i % 2 else 0.05)
        for i, t in enumerate(tensors)
    ]
    opt = Adan(groups, lr=0.01)
    for t, g in zip(tensors, grads[0]):
        t.grad = g
    buckets = opt._buckets()
    assert len(buckets) == 2  # decay and no-decay, not one per group
    assert sorted(len(lists[0]) for lists in buckets.values()) == [2, 3]


def test_skips_parameters_without_grad():
    a, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    opt = Adan([a, b], lr=0.1)
    a.grad = torch.ones(3)
    opt.step()
    assert not torch.equal(a, torch.ones(3))
    assert torch.equal(b, torch.ones(3)) and len(opt.state[b]) == 0


def test_first_step_is_sign_like():
    # Step 1: m/c1 = g, v = 0, n/c3 = g^2, so the step is lr * sign(g).
    p = nn.Parameter(torch.zeros(4))
    opt = Adan([p], lr=0.1, eps=0.0)
    p.grad = torch.tensor([2.0, -3.0, 0.5, -0.1])
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([-0.1, 0.1, -0.1,
                                                         0.1]))


def test_matches_mmpretrain_adan():
    # The drop-in claim of the paper schedule config: same trajectory as
    # mmpretrain's Adan (no_prox=False, its only correct foreach mode).
    from mmpretrain.engine.optimizers import Adan as MMPretrainAdan
    params, grads = make_problem(num_steps=5, seed=1)
    kwargs = dict(lr=0.01,
                  betas=(0.98, 0.92, 0.90),
                  eps=1e-8,
                  weight_decay=0.05)
    ours, _ = run_adan(params, grads, [([0, 1, 2, 3, 4], {})], **kwargs)
    tensors = [nn.Parameter(p.clone()) for p in params]
    theirs = MMPretrainAdan(tensors, foreach=False, **kwargs)
    for step_grads in grads:
        for t, g in zip(tensors, step_grads):
            t.grad = g.clone()
        theirs.step()
    for a, b in zip(ours, tensors):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=TOL)


def test_state_dict_resume_continues_identically():
    params, grads = make_problem(num_steps=4, seed=2)
    full, _ = run_adan(params,
                       grads, [([0, 1, 2, 3, 4], {})],
                       lr=0.01,
                       weight_decay=0.05)
    half, opt = run_adan(params,
                         grads[:2], [([0, 1, 2, 3, 4], {})],
                         lr=0.01,
                         weight_decay=0.05)
    state = copy.deepcopy(opt.state_dict())
    tensors = [nn.Parameter(p.clone()) for p in half]
    resumed = Adan(tensors, lr=0.01, weight_decay=0.05)
    resumed.load_state_dict(state)
    for step_grads in grads[2:]:
        for t, g in zip(tensors, step_grads):
            t.grad = g.clone()
        resumed.step()
    for a, b in zip(full, tensors):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)


def test_built_from_the_paper_schedule_config():
    from mmengine.config import Config
    cfg = Config.fromfile('configs/_base_/schedules/adan_coslr_pretrain.py')
    assert OPTIMIZERS.get(cfg.optim_wrapper.optimizer.type) is Adan
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert isinstance(wrapper.optimizer, Adan)
    x = torch.randn(5, 4)
    wrapper.backward(model(x).pow(2).mean())
    decays = sorted(k[4] for k in wrapper.optimizer._buckets())
    assert decays == [0.0, 0.05]  # 6 param groups, 2 foreach buckets
    before = model[0].weight.detach().clone()
    wrapper.step()
    assert not torch.equal(before, model[0].weight)


def test_rejects_bad_arguments():
    p = [nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match='betas'):
        Adan(p, betas=(0.9, 0.9))
    with pytest.raises(ValueError, match='lr'):
        Adan(p, lr=-1.0)
    assert math.isclose(Adan(p).defaults['betas'][2], 0.99)
