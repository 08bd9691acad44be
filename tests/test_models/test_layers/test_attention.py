import pytest
import torch

from lmd_toolkit.models.layers import Attention, Block


@pytest.mark.parametrize('module_cls', ['attention', 'block'])
def test_fused_attention_equals_manual_path_incl_grads(module_cls):
    torch.manual_seed(0)
    if module_cls == 'attention':
        fused = Attention(32, num_heads=4, fused_attn=True)
        manual = Attention(32, num_heads=4, fused_attn=False)
    else:
        fused = Block(32, num_heads=4, fused_attn=True)
        manual = Block(32, num_heads=4, fused_attn=False)
    manual.load_state_dict(fused.state_dict())
    x = torch.randn(2, 7, 32)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    y1, y2 = fused(x1), manual(x2)
    torch.testing.assert_close(y1, y2, atol=1e-5, rtol=1e-5)
    w = torch.randn_like(y1)
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-5)
    for (n, p1), p2 in zip(fused.named_parameters(), manual.parameters()):
        torch.testing.assert_close(p1.grad,
                                   p2.grad,
                                   atol=1e-5,
                                   rtol=1e-5,
                                   msg=n)


def test_manual_path_is_softmax_qkt_v():
    torch.manual_seed(0)
    attn = Attention(8, num_heads=2, fused_attn=False)
    x = torch.randn(1, 5, 8)
    q, k, v = attn.qkv(x).reshape(1, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    ref = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1) @ v
    ref = attn.proj(ref.transpose(1, 2).reshape(1, 5, 8))
    torch.testing.assert_close(attn(x), ref)


def test_block_parameter_names():
    names = {n for n, _ in Block(16, 2).named_parameters()}
    assert {
        'norm1.weight', 'attn.qkv.weight', 'attn.proj.bias', 'norm2.bias',
        'mlp.fc1.weight', 'mlp.fc2.bias'
    } <= names
    assert Block(16, 2).norm1.eps == 1e-6


def test_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match='num_heads'):
        Attention(10, num_heads=3)
