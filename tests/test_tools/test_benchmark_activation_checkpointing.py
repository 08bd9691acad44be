"""Pure helpers of tools/analysis_tools/benchmark_activation_checkpointing.py:
the saved-tensor accounting against hand counts, the linear extrapolation,
the arch and config resolution. No timing."""
import json
import os.path as osp
import sys

import pytest
import torch
import torch.utils.checkpoint
from tool_helpers import ROOT

sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))

import benchmark_activation_checkpointing as bench  # noqa: E402

from lmd_toolkit.models.layers import Block  # noqa: E402

pytestmark = pytest.mark.usefixtures('single_thread')


def test_saved_bytes_of_a_linear_relu_match_a_hand_count():
    torch.manual_seed(0)
    layer = torch.nn.Linear(5, 7)
    x = torch.randn(3, 5, requires_grad=True)

    def forward():
        # addmm saves x (for the weight grad) and weight.T (for x's grad,
        # a view of the weight: excluded with it).
        y = torch.relu(layer(x))
        return (y * y).sum()  # relu saves y; y * y saves y twice: once

    loss, saved = bench.saved_tensor_bytes(forward,
                                           exclude=layer.parameters())
    assert saved == (3 * 5 + 3 * 7) * 4
    loss.backward()  # the accounting leaves the graph intact
    assert layer.weight.grad is not None
    _, with_weight = bench.saved_tensor_bytes(forward)
    assert with_weight == saved + 5 * 7 * 4  # now the weight counts


def test_saved_bytes_count_only_what_outlives_forward():
    a = torch.randn(4, 4, requires_grad=True)

    def forward():
        (a.exp() * 2).sum()  # graph dropped at once: nothing stays saved
        return a.sin().sum()  # sin saves a (a leaf input): 64 bytes

    _, saved = bench.saved_tensor_bytes(forward)
    assert saved == 4 * 4 * 4


def test_a_checkpointed_block_saves_only_its_input():
    torch.manual_seed(0)
    block = Block(16, 2)
    x = torch.randn(2, 5, 16, requires_grad=True)
    params = list(block.parameters())
    _, plain = bench.saved_tensor_bytes(lambda: block(x).sum(), params)
    _, checkpointed = bench.saved_tensor_bytes(
        lambda: torch.utils.checkpoint.checkpoint(
            block, x, use_reentrant=False).sum(), params)
    assert checkpointed == x.nbytes
    assert plain > 8 * x.nbytes  # qkv, MLP hidden, norms, attention, ...


def test_linear_fit_through_two_points():
    a, b = bench.linear_fit(4, 10.0, 8, 18.0)
    assert (a, b) == (2.0, 2.0)
    assert a + b * 32 == 66.0
    with pytest.raises(ValueError):
        bench.linear_fit(4, 1.0, 4, 2.0)


def test_resolve_arch_and_model_config():
    large = bench.resolve_arch('large')
    assert (large['embed_dims'], large['num_layers']) == (1024, 24)
    huge = bench.model_config(bench.resolve_arch('huge'), depth=8)
    assert huge['backbone']['arch']['embed_dims'] == 1280
    assert huge['backbone']['num_layers'] == 8
    assert huge['neck']['embed_dims'] == 1280
    assert huge['projector']['checkpoint'] is None
    custom = bench.resolve_arch(json.dumps(
        dict(embed_dims=64, num_layers=2, num_heads=2)))
    assert custom['name'] == 'custom'
    with pytest.raises(ValueError, match='num_heads'):
        bench.resolve_arch('{"embed_dims": 64, "num_layers": 2}')
    with pytest.raises(ValueError, match='neither'):
        bench.resolve_arch('gigantic')
