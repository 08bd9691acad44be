"""The per-rank accounting of tools/analysis_tools/benchmark_fsdp_memory.py
(the benchmark itself starts processes and is run by hand)."""
import os.path as osp
import sys

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))
from benchmark_fsdp_memory import held_state_bytes, rss_bytes  # noqa: E402


def test_held_state_bytes_counts_parameters_and_adamw_states():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    model[1].weight.requires_grad_(False)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad])
    model(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    trainable = (4 * 3 + 3 + 2) * 4  # fp32 bytes
    held = held_state_bytes(model, optimizer, grads=trainable)
    assert held == dict(
        trainable=trainable, frozen=3 * 2 * 4, grads=trainable,
        # exp_avg + exp_avg_sq per parameter, and a 0-d fp32 step count
        optimizer=2 * trainable + 3 * 4)


def test_rss_grows_with_a_held_allocation():
    before = rss_bytes()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    assert rss_bytes() - before > 48 * 2**20
    del block
