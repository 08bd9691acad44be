"""LMDUNet: the "w/o MAE" ablation (full latent, masked patches replaced by a
learned embedding, loss on the masked patches only). The backbone encodes,
the neck LMDUNetDecoder predicts, as for the ViT."""
import numpy as np
import pytest
import torch

from lmd_toolkit.models import LMDUNet, LMDUNetDecoder
from lmd_toolkit.models.layers import patchify
from lmd_toolkit.registry import MODELS


pytestmark = pytest.mark.usefixtures('single_thread')


def tiny_unet(**kwargs):
    cfg = dict(in_channels=3, latent_size=16, patch_size=4, base_channels=16,
               channel_mults=(1, 2), num_res_blocks=1)
    cfg.update(kwargs)
    torch.manual_seed(0)
    unet = LMDUNet(**cfg)
    unet.init_weights()
    return unet


def unet_model(img=32, p=4):
    """The algorithm of the ViT tests with the U-Net and its neck (shapes
    derived from the backbone)."""
    cfg = dict(type='LatentMaskingDiffusion',
               projector=dict(type='IdentityProjector'),
               backbone=dict(type='LMDUNet', in_channels=3, latent_size=img,
                             patch_size=p, base_channels=32,
                             channel_mults=(1, 2), num_res_blocks=1),
               neck=dict(type='LMDUNetDecoder'),
               head=dict(type='LatentReconstructionHead', patch_size=p,
                         norm_target=False))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def astronaut_batch(n=8, size=32):
    from skimage.data import astronaut
    img = astronaut()[::4, ::4]  # (128, 128, 3)
    crops = [
        img[y:y + size, x:x + size] for y in range(0, 128, size)
        for x in range(0, 128, size)
    ][:n]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


def test_shapes_and_same_mask_as_vit():
    unet = tiny_unet()
    vit = MODELS.build(dict(type='LMDViT', arch=dict(embed_dims=32,
                                                     num_layers=1,
                                                     num_heads=2),
                            in_channels=3, latent_size=16, patch_size=4))
    neck = LMDUNetDecoder(embed_dims=unet.embed_dims, in_channels=3,
                          patch_size=4)
    z = torch.randn(2, 3, 16, 16)
    x, mask, ids = unet.forward_masked(z, 0.75, torch.Generator()
                                       .manual_seed(3))
    assert x.shape == (2, 16, 16, 16)  # features (B, c, h, w)
    pred = neck(x, ids)
    _, vit_mask, vit_ids = vit.forward_masked(z, 0.75, torch.Generator()
                                              .manual_seed(3))
    assert pred.shape == (2, 16, 4 * 4 * 3)
    assert mask.sum(1).tolist() == [12, 12]  # 16 - int(16 * 0.25)
    torch.testing.assert_close(mask, vit_mask)
    torch.testing.assert_close(ids, vit_ids)
    assert neck(unet.forward_features(z), ids).shape == (2, 16, 48)


def test_masked_patches_become_the_mask_embedding():
    """With the U-Net replaced by the identity, the prediction is its input:
    visible patches are the latent's, masked ones the learned embedding."""
    unet = tiny_unet()
    unet.unet = lambda x: x
    z = torch.randn(2, 3, 16, 16)
    mask = torch.zeros(2, 16)
    mask[0, [1, 5]] = 1
    mask[1, 0] = 1
    features, _ = unet.forward_with_mask(z, mask)  # (B, d, h, w) here
    out = patchify(features, 4)  # (B, L, 48)
    tokens = patchify(z, 4)
    visible = mask == 0
    torch.testing.assert_close(out[visible], tokens[visible])
    emb = unet.mask_embedding.detach()
    torch.testing.assert_close(out[mask == 1], emb.expand(3, -1))


def test_loss_covers_masked_patches_only():
    model = unet_model()
    data = model.data_preprocessor(dict(inputs=astronaut_batch(2)), True)
    z = data['inputs']
    model.mask_ratio = 0.5
    g = torch.Generator().manual_seed(0)
    pred, mask = model.predict_masked(z, 0.5, g)
    pred = pred.detach().requires_grad_(True)
    loss = model.head.loss(pred, z, mask)
    # by hand: per-token MSE, averaged over the masked tokens
    per_token = ((pred - patchify(z, 4))**2).mean(-1)  # (B, L)
    torch.testing.assert_close(loss, per_token[mask == 1].mean())
    loss.backward()
    assert pred.grad[mask == 0].abs().max() == 0
    assert pred.grad[mask == 1].abs().max() > 0
    # and through the whole model the mask embedding gets a gradient (once
    # the zero-initialised output layer is not zero any more)
    torch.nn.init.normal_(model.neck.conv_out.weight, std=0.01)
    model.zero_grad()
    model(**data, mode='loss')['loss'].backward()
    assert model.backbone.mask_embedding.grad.abs().max() > 0


def test_unet_learns_a_real_batch():
    model = unet_model()
    model.mask_ratio = 0.5
    data = model.data_preprocessor(dict(inputs=astronaut_batch()), True)
    optim = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=2e-3)
    torch.manual_seed(1)
    losses = []
    for _ in range(30):
        loss = model(**data, mode='loss')['loss']
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    print(f'\nU-Net loss {first:.4f} -> {last:.4f}')
    assert last < 0.6 * first


def test_predict_and_inpaint_api():
    model = unet_model().eval()
    data = model.data_preprocessor(dict(inputs=astronaut_batch(2)))
    out = model.predict(data['inputs'])
    assert len(out) == 2 and out[0]['pred_img'].shape == (3, 32, 32)
    # visible patches are pasted from the input: exact there
    mask = torch.zeros(2, 64)
    mask[:, :10] = 1
    pred = model.predict_with_mask(data['inputs'], mask)
    assert pred.shape == (2, 64, 48)


@pytest.mark.parametrize('kwargs, message', [
    (dict(latent_size=18), 'divisible by patch_size=4'),
    (dict(channel_mults=(1, 2, 2, 2), latent_size=12, patch_size=2),
     r'2\*\*\(len\(channel_mults\)-1\)=8'),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_unet(**kwargs)


def test_wrong_latent_error():
    with pytest.raises(ValueError,
                       match=r'expected a latent \(B, 3, \*\(16, 16'):
        tiny_unet().forward_masked(torch.randn(1, 4, 16, 16), 0.5)


def test_backbone_encodes_neck_predicts():
    """The contract of LMDViT holds for the U-Net: forward_masked gives
    features, the neck turns them into (B, L, p*p*d)."""
    model = unet_model()
    z = torch.randn(2, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    x, mask, ids = model.backbone.forward_masked(z, 0.5, g)
    assert x.shape[:2] == (2, model.backbone.embed_dims)
    pred = model.neck(x, ids)
    assert pred.shape == (2, 64, 48)
    g = torch.Generator().manual_seed(0)
    pred2, mask2 = model.predict_masked(z, 0.5, g)
    torch.testing.assert_close(pred2, pred)
    torch.testing.assert_close(mask2, mask)
    assert model.neck.norm_out.num_groups == model.backbone.norm_groups


def test_neck_none_is_an_error():
    cfg = dict(type='LatentMaskingDiffusion',
               projector=dict(type='IdentityProjector'),
               backbone=dict(type='LMDUNet', latent_size=16, patch_size=4,
                             base_channels=16, channel_mults=(1, 2),
                             num_res_blocks=1),
               neck=None,
               head=dict(type='LatentReconstructionHead'))
    with pytest.raises(ValueError, match='LMDUNetDecoder'):
        MODELS.build(cfg)


def test_old_layout_state_dict_loads_with_the_same_output():
    """Checkpoints written before the split keep norm_out / conv_out under
    backbone.*; they load into neck.* and give the same prediction."""
    model = unet_model().eval()
    torch.nn.init.normal_(model.neck.conv_out.weight, std=0.05)
    torch.nn.init.normal_(model.neck.norm_out.weight, mean=1.0, std=0.1)
    z = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 64)
    mask[:, ::3] = 1
    expected = model.predict_with_mask(z, mask)
    old = {k.replace('neck.', 'backbone.', 1) if k.startswith('neck.') else
           k: v.clone() for k, v in model.state_dict().items()}
    assert 'backbone.conv_out.weight' in old
    fresh = unet_model().eval()
    result = fresh.load_state_dict(old, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    torch.testing.assert_close(fresh.predict_with_mask(z, mask), expected)
    # mmengine's loader (Runner resume / load_from / init_cfg Pretrained)
    from mmengine.runner.checkpoint import load_state_dict
    fresh = unet_model().eval()
    load_state_dict(fresh, old, strict=True)
    torch.testing.assert_close(fresh.predict_with_mask(z, mask), expected)
