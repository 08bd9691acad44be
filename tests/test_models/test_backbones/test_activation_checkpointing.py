"""``with_cp`` of LMDViT and LMDDecoder: the same loss and gradients as
without it (drop path included), checkpointing only in training with
gradients on, one checkpointed call per block, unchanged parameter names."""
import pytest
import torch
import torch.utils.checkpoint

from lmd_toolkit.models import LMDDecoder, LMDViT
from lmd_toolkit.models.layers import Block
from lmd_toolkit.registry import MODELS

pytestmark = pytest.mark.usefixtures('single_thread')

GRID, PATCH, CHANNELS, WIDTH = 4, 2, 4, 32  # 16 tokens of a (4, 8, 8) latent
LATENT = GRID * PATCH


def encoder(**kwargs) -> LMDViT:
    torch.manual_seed(0)
    model = LMDViT(arch=dict(embed_dims=WIDTH, num_layers=3, num_heads=2),
                   in_channels=CHANNELS, latent_size=LATENT,
                   patch_size=PATCH, **kwargs)
    model.init_weights()
    return model


def decoder(**kwargs) -> LMDDecoder:
    torch.manual_seed(0)
    model = LMDDecoder(num_patches=GRID * GRID, patch_size=PATCH,
                       in_channels=CHANNELS, embed_dims=WIDTH,
                       decoder_embed_dims=16, decoder_depth=2,
                       decoder_num_heads=2, **kwargs)
    model.init_weights()
    return model


def latent(batch: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(batch, CHANNELS, LATENT, LATENT, generator=gen)


def encoder_loss(model: LMDViT, z: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(2)  # the same mask every call
    x, _, _ = model.forward_masked(z, 0.5, gen)  # (B, 1 + K, C)
    # Not (x**2).mean(): the final LayerNorm makes that constant.
    weight = torch.randn(x.shape, generator=gen)
    return (x * weight).mean()


def decoder_loss(model: LMDDecoder, x: torch.Tensor,
                 ids_restore: torch.Tensor) -> torch.Tensor:
    return (model(x, ids_restore)**2).mean()


def decoder_inputs(batch: int = 3):
    gen = torch.Generator().manual_seed(3)
    kept = GRID * GRID // 2
    x = torch.randn(batch, 1 + kept, WIDTH, generator=gen)
    ids_restore = torch.stack([
        torch.randperm(GRID * GRID, generator=gen) for _ in range(batch)
    ])
    return x, ids_restore


def losses_and_grads(model, loss_fn, *inputs, seed=0):
    model.train()
    model.zero_grad()
    torch.manual_seed(seed)  # drop path draws from the global generator
    loss = loss_fn(model, *inputs)
    loss.backward()
    return loss.detach(), {
        n: p.grad.clone()
        for n, p in model.named_parameters() if p.requires_grad
    }


def assert_same(plain, checkpointed):
    loss, grads = plain
    loss_cp, grads_cp = checkpointed
    torch.testing.assert_close(loss_cp, loss, rtol=0, atol=1e-6)
    assert grads.keys() == grads_cp.keys() and grads
    for name in grads:
        torch.testing.assert_close(grads_cp[name], grads[name], rtol=0,
                                   atol=1e-6, msg=name)


@pytest.mark.parametrize('drop_path_rate', [0.0, 0.3])
def test_encoder_checkpointing_gives_the_same_loss_and_gradients(
        drop_path_rate):
    plain = encoder(drop_path_rate=drop_path_rate)
    checkpointed = encoder(drop_path_rate=drop_path_rate, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    z = latent()
    ref = losses_and_grads(plain, encoder_loss, z)
    assert_same(ref, losses_and_grads(checkpointed, encoder_loss, z))
    if drop_path_rate:  # the comparison can see drop path: another seed
        other, _ = losses_and_grads(plain, encoder_loss, z, seed=1)
        assert not torch.allclose(other, ref[0])


def test_decoder_checkpointing_gives_the_same_loss_and_gradients():
    plain, checkpointed = decoder(), decoder(with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    inputs = decoder_inputs()
    assert_same(losses_and_grads(plain, decoder_loss, *inputs),
                losses_and_grads(checkpointed, decoder_loss, *inputs))


def tiny_lmd_cfg(with_cp: bool, drop_path_rate: float = 0.2) -> dict:
    return dict(
        type='LatentMaskingDiffusion',
        projector=dict(type='IdentityProjector'),
        backbone=dict(type='LMDViT',
                      arch=dict(embed_dims=WIDTH, num_layers=2,
                                num_heads=2),
                      in_channels=3, latent_size=LATENT, patch_size=PATCH,
                      drop_path_rate=drop_path_rate, with_cp=with_cp),
        neck=dict(type='LMDDecoder', num_patches=GRID * GRID,
                  patch_size=PATCH, in_channels=3, embed_dims=WIDTH,
                  decoder_embed_dims=16, decoder_depth=2,
                  decoder_num_heads=2, with_cp=with_cp),
        head=dict(type='LatentReconstructionHead', patch_size=PATCH,
                  norm_target=True))


def test_whole_model_checkpointing_gives_the_same_loss_and_gradients():
    torch.manual_seed(0)
    plain = MODELS.build(tiny_lmd_cfg(with_cp=False))
    plain.init_weights()
    checkpointed = MODELS.build(tiny_lmd_cfg(with_cp=True))
    checkpointed.load_state_dict(plain.state_dict())
    images = torch.rand(2, 3, LATENT, LATENT) * 2 - 1  # IdentityProjector

    def loss_fn(model, x):
        return model.loss(x)['loss']  # random_masking: global generator

    assert_same(losses_and_grads(plain, loss_fn, images),
                losses_and_grads(checkpointed, loss_fn, images))


class CountingCheckpoint:
    """Stands in for ``torch.utils.checkpoint.checkpoint``; counts calls."""

    def __init__(self):
        self.calls = 0
        self.modules = []
        self.real = torch.utils.checkpoint.checkpoint

    def __call__(self, function, *args, **kwargs):
        self.calls += 1
        self.modules.append(function)
        assert kwargs.get('use_reentrant') is False
        return self.real(function, *args, **kwargs)


@pytest.fixture
def counting(monkeypatch):
    counter = CountingCheckpoint()
    monkeypatch.setattr(torch.utils.checkpoint, 'checkpoint', counter)
    return counter


def test_training_checkpoints_every_block_once(counting):
    model = encoder(with_cp=True).train()
    encoder_loss(model, latent()).backward()
    assert counting.calls == len(model.blocks) == 3
    assert counting.modules == list(model.blocks)

    counting.modules.clear()
    neck = decoder(with_cp=True).train()
    decoder_loss(neck, *decoder_inputs()).backward()
    assert counting.calls == 3 + len(neck.decoder_blocks)
    assert counting.modules == list(neck.decoder_blocks)


def test_no_checkpointing_in_eval_without_grad_or_when_off(counting):
    z = latent()
    x, ids_restore = decoder_inputs()
    model, neck = encoder(with_cp=True), decoder(with_cp=True)
    model.eval(), neck.eval()
    encoder_loss(model, z).backward()  # eval with gradients: plain blocks
    decoder_loss(neck, x, ids_restore).backward()
    model.train(), neck.train()
    with torch.no_grad():
        encoder_loss(model, z)
        decoder_loss(neck, x, ids_restore)
    encoder_loss(encoder().train(), z).backward()  # with_cp=False
    decoder_loss(decoder().train(), x, ids_restore).backward()
    assert counting.calls == 0


def test_with_cp_keeps_blocks_and_parameter_names():
    plain, checkpointed = encoder(), encoder(with_cp=True)
    assert type(checkpointed.blocks) is torch.nn.ModuleList
    assert all(type(b) is Block for b in checkpointed.blocks)
    assert plain.state_dict().keys() == checkpointed.state_dict().keys()
    neck, neck_cp = decoder(), decoder(with_cp=True)
    assert all(type(b) is Block for b in neck_cp.decoder_blocks)
    assert neck.state_dict().keys() == neck_cp.state_dict().keys()
