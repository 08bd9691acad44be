import pytest
import torch

from lmd_toolkit.models import LMDViT
from lmd_toolkit.models.layers import build_2d_sincos_pos_embed
from lmd_toolkit.registry import MODELS


def tiny(**kwargs):
    cfg = dict(arch=dict(embed_dims=32, num_layers=2, num_heads=4),
               in_channels=4,
               latent_size=8,
               patch_size=2)
    cfg.update(kwargs)
    return LMDViT(**cfg)


def count(module, trainable_only):
    return sum(p.numel() for p in module.parameters()
               if p.requires_grad or not trainable_only)


def test_vit_b_parameter_count_matches_timm():
    from timm.models.vision_transformer import VisionTransformer
    timm_vit = VisionTransformer(img_size=224,
                                 patch_size=16,
                                 embed_dim=768,
                                 depth=12,
                                 num_heads=12,
                                 num_classes=0,
                                 global_pool='token')
    ours = LMDViT('base', in_channels=3, latent_size=224, patch_size=16)
    # Same tensors; timm's pos_embed is learned, ours is a fixed sin-cos
    # table stored as a frozen parameter (1, 197, 768).
    assert ours.pos_embed.shape == timm_vit.pos_embed.shape == (1, 197, 768)
    assert timm_vit.pos_embed.requires_grad
    assert not ours.pos_embed.requires_grad
    assert count(ours, trainable_only=False) == count(timm_vit,
                                                      trainable_only=False)
    assert count(ours, trainable_only=True) == count(
        timm_vit, trainable_only=True) - timm_vit.pos_embed.numel()
    latent_b = LMDViT('base', in_channels=4, latent_size=28, patch_size=2)
    print(f'\nViT-B timm 3x16x16@224 trainable: '
          f'{count(timm_vit, True):,}; ours same geometry: '
          f'{count(ours, True):,}; ours 4x2x2 latents @28x28 trainable: '
          f'{count(latent_b, True):,} (pos_embed {latent_b.pos_embed.shape})')


def test_state_dict_keys():
    keys = set(tiny().state_dict())
    expected = {
        'cls_token', 'pos_embed', 'patch_embed.proj.weight',
        'patch_embed.proj.bias', 'blocks.0.norm1.weight',
        'blocks.0.attn.qkv.weight', 'blocks.0.attn.qkv.bias',
        'blocks.0.attn.proj.weight', 'blocks.1.norm2.bias',
        'blocks.1.mlp.fc1.weight', 'blocks.1.mlp.fc2.bias', 'norm.weight',
        'norm.bias'
    }
    assert expected <= keys
    assert not any(k.startswith('blocks.2.') for k in keys)


def test_arch_presets_and_depth_override():
    small = LMDViT('small', latent_size=4, patch_size=2, num_layers=1)
    assert (small.embed_dims, small.num_heads, len(small.blocks)) == (384, 6,
                                                                      1)
    assert LMDViT.arch_zoo['large'] == dict(embed_dims=1024,
                                            num_layers=24,
                                            num_heads=16)
    assert LMDViT.arch_zoo['huge'] == dict(embed_dims=1280,
                                           num_layers=32,
                                           num_heads=16)
    with pytest.raises(KeyError, match='gigantic'):
        LMDViT('gigantic')


def test_pos_embed_is_sincos_without_init_weights():
    vit = tiny()
    expected = build_2d_sincos_pos_embed(4, 4, 32, cls_token=True)[None]
    torch.testing.assert_close(vit.pos_embed.data, expected)
    vit.init_weights()
    torch.testing.assert_close(vit.pos_embed.data, expected)
    assert not vit.pos_embed.requires_grad


def test_init_weights():
    torch.manual_seed(0)
    vit = tiny()
    vit.init_weights()
    assert torch.all(vit.blocks[0].attn.qkv.bias == 0)
    assert torch.all(vit.norm.weight == 1) and torch.all(vit.norm.bias == 0)
    assert torch.all(vit.patch_embed.proj.bias == 0)
    assert 0.005 < vit.cls_token.std() < 0.05
    # xavier-uniform bound for the qkv Linear (32 -> 96)
    bound = (6 / (32 + 96))**0.5
    assert vit.blocks[0].attn.qkv.weight.abs().max() <= bound
    assert vit.blocks[0].attn.qkv.weight.abs().max() > 0.8 * bound


def test_forward_masked_and_features_shapes():
    vit = MODELS.build(
        dict(type='LMDViT',
             arch=dict(embed_dims=32, num_layers=2, num_heads=4),
             latent_size=(8, 12),
             patch_size=2))
    z = torch.randn(3, 4, 8, 12)
    L = 4 * 6
    x, mask, ids = vit.forward_masked(z, 0.75,
                                      torch.Generator().manual_seed(0))
    K = int(L * 0.25)
    assert x.shape == (3, 1 + K, 32)
    assert mask.shape == ids.shape == (3, L)
    assert vit(z).shape == vit.forward_features(z).shape == (3, 1 + L, 32)
    no_cls = tiny(with_cls_token=False)
    assert no_cls.pos_embed.shape == (1, 16, 32)
    assert no_cls.forward_masked(torch.randn(1, 4, 8, 8),
                                 0.5)[0].shape == (1, 8, 32)


def test_masked_forward_at_ratio_zero_equals_features_up_to_order():
    torch.manual_seed(0)
    vit = tiny().eval()
    z = torch.randn(2, 4, 8, 8)
    x, mask, ids_restore = vit.forward_masked(z, 0.0)
    restored = torch.gather(x[:, 1:], 1, ids_restore[...,
                                                     None].expand(-1, -1, 32))
    full = vit.forward_features(z)
    torch.testing.assert_close(restored, full[:, 1:], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(x[:, 0], full[:, 0], atol=1e-5, rtol=1e-4)


def test_bad_input_errors():
    with pytest.raises(ValueError, match='patch_size=3'):
        tiny(patch_size=3)
    with pytest.raises(ValueError, match='latent_size'):
        tiny().forward_features(torch.randn(1, 4, 16, 16))
