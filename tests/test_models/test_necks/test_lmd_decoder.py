import pytest
import torch

from lmd_toolkit.models import LMDDecoder, LMDViT
from lmd_toolkit.models.layers import build_2d_sincos_pos_embed


def tiny(**kwargs):
    cfg = dict(num_patches=16,
               patch_size=2,
               in_channels=4,
               embed_dims=32,
               decoder_embed_dims=16,
               decoder_depth=2,
               decoder_num_heads=2)
    cfg.update(kwargs)
    return LMDDecoder(**cfg)


def first_block_input(decoder, x, ids_restore):
    captured = {}
    handle = decoder.decoder_blocks[0].register_forward_pre_hook(
        lambda module, args: captured.setdefault('x', args[0].clone()))
    decoder(x, ids_restore)
    handle.remove()
    return captured['x']


def test_sign_changes_block_input_by_two_pos_embed():
    torch.manual_seed(0)
    minus = tiny(pos_embed_sign=-1.0)
    plus = tiny(pos_embed_sign=1.0)
    plus.load_state_dict(minus.state_dict())
    x = torch.randn(2, 1 + 8, 32)
    ids_restore = torch.stack([torch.randperm(16) for _ in range(2)])
    diff = first_block_input(plus, x, ids_restore) - first_block_input(
        minus, x, ids_restore)
    expected = (2 * minus.decoder_pos_embed).expand(2, -1, -1)
    torch.testing.assert_close(diff, expected)
    assert diff.abs().sum() > 0


def test_block_input_is_unshuffled_tokens_minus_pos():
    torch.manual_seed(0)
    dec = tiny(decoder_depth=1)
    x = torch.randn(1, 1 + 4, 32)
    ids_shuffle = torch.randperm(16)[None]
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    got = first_block_input(dec, x, ids_restore)
    emb = dec.decoder_embed(x)
    pos = dec.decoder_pos_embed[0]
    # kept token k sits at position ids_shuffle[k]; the rest are mask tokens
    for k in range(4):
        torch.testing.assert_close(got[0, 1 + ids_shuffle[0, k]],
                                   emb[0, 1 + k] - pos[1 + ids_shuffle[0, k]])
    masked_pos = ids_shuffle[0, 4]
    torch.testing.assert_close(got[0, 1 + masked_pos],
                               dec.mask_token[0, 0] - pos[1 + masked_pos])
    torch.testing.assert_close(got[0, 0], emb[0, 0])  # cls slot has zero pos


def test_forward_shape_and_names_with_encoder():
    enc = LMDViT(dict(embed_dims=32, num_layers=1, num_heads=4),
                 latent_size=(8, 12),
                 patch_size=2)
    dec = tiny(num_patches=(4, 6))
    x, mask, ids = enc.forward_masked(torch.randn(2, 4, 8, 12), 0.75)
    assert dec(x, ids).shape == (2, 24, 16)
    names = {n for n, _ in dec.named_parameters()}
    assert {
        'decoder_embed.weight', 'mask_token', 'decoder_pos_embed',
        'decoder_blocks.1.attn.qkv.weight', 'decoder_norm.weight',
        'decoder_pred.bias'
    } <= names
    assert not dec.decoder_pos_embed.requires_grad
    torch.testing.assert_close(
        dec.decoder_pos_embed[0],
        build_2d_sincos_pos_embed(4, 6, 16, cls_token=True))


def test_init_weights():
    dec = tiny()
    dec.init_weights()
    assert torch.all(dec.decoder_pred.bias == 0)
    assert 0.0 < dec.mask_token.std() < 0.1


def test_errors():
    with pytest.raises(ValueError, match=r'\(gh, gw\)'):
        tiny(num_patches=24)
    with pytest.raises(ValueError, match='pos_embed_sign'):
        tiny(pos_embed_sign=0.5)
