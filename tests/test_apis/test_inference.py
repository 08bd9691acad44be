"""lmd_toolkit.apis: init_model, reconstruct, inpaint."""
import numpy as np
import pytest
import torch
from PIL import Image

from lmd_toolkit.apis import inpaint, load_images, reconstruct
from lmd_toolkit.apis.inference import region_to_token_mask


def test_ratio_zero_identity_returns_input_exactly(pixel_model, images):
    out = reconstruct(pixel_model, images, mask_ratio=0.0)
    assert out['mask'].sum() == 0
    assert out['recon'].dtype == torch.uint8
    assert torch.equal(out['recon'], images)
    # the same from HWC numpy arrays
    arrays = [img.permute(1, 2, 0).numpy() for img in images]
    assert torch.equal(reconstruct(pixel_model, arrays, 0.0)['recon'], images)


def test_input_types_and_batching_agree(pixel_model, images, tmp_path):
    ref = reconstruct(pixel_model, images, mask_ratio=0.5, batch_size=3)
    arrays = [img.permute(1, 2, 0).numpy() for img in images]
    pils = [Image.fromarray(a) for a in arrays]
    paths = []
    for i, pil in enumerate(pils):
        paths.append(str(tmp_path / f'{i}.png'))
        pil.save(paths[-1])
    for inputs, bs in [(list(images), 1), (arrays, 2), (pils, 3), (paths, 1)]:
        out = reconstruct(pixel_model, inputs, mask_ratio=0.5, batch_size=bs)
        assert torch.equal(out['mask'], ref['mask'])
        assert torch.equal(out['recon'], ref['recon'])
    # one image alone gets the mask it has at index 0 of a list
    single = reconstruct(pixel_model, arrays[0], mask_ratio=0.5)
    assert torch.equal(single['mask'][0], ref['mask'][0])


def test_determinism_under_seed(pixel_model, images):
    a = reconstruct(pixel_model, images, mask_ratio=0.6, seed=7)
    b = reconstruct(pixel_model, images, mask_ratio=0.6, seed=7)
    c = reconstruct(pixel_model, images, mask_ratio=0.6, seed=8)
    assert torch.equal(a['recon'], b['recon'])
    assert not torch.equal(a['mask'], c['mask'])
    assert a['mask'].sum(1).tolist() == [39.0] * 3  # 64 - int(64 * 0.4)


def test_float_output(pixel_model, images):
    out = reconstruct(pixel_model, images, mask_ratio=0.0, output='float')
    assert out['recon'].dtype == torch.float32
    torch.testing.assert_close(out['recon'], images.float(), atol=1e-3, rtol=0)


def test_resize_and_center_crop():
    # 96 x 128 image: left/right quarter red, middle blue -> scaled to
    # 64 x 85, cropped to the central 64 columns.
    img = np.zeros((96, 128, 3), np.uint8)
    img[:, :16, 0] = 255
    img[:, -16:, 0] = 255
    img[:, 16:-16, 2] = 255
    out = load_images(img, (64, 64))
    assert out.shape == (1, 3, 64, 64)
    assert int(out[0, 0, :, 2:-2].max()) < 60  # red borders cropped away
    assert int(out[0, 2, 32, 32]) == 255


def test_given_mask_matches_random_path(pixel_model, images):
    x = images.float() / 127.5 - 1
    g = torch.Generator().manual_seed(0)
    enc, mask, ids_restore = pixel_model.backbone.forward_masked(x, 0.5, g)
    expected = pixel_model.neck(enc, ids_restore)
    got = pixel_model.predict_with_mask(x, mask)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    out = reconstruct(pixel_model, images, mask=mask)
    assert torch.equal(out['mask'], mask)


def test_fully_masked_forward_has_no_visible_token(pixel_model, images):
    x = images.float() / 127.5 - 1
    pred = pixel_model.predict_with_mask(x, torch.ones(3, 64))
    # nothing visible: every image gets the same prediction
    torch.testing.assert_close(pred[0], pred[1])


def test_bad_inputs_raise_clear_errors(pixel_model, images):
    with pytest.raises(ValueError, match=r'\(L,\) = \(64,\).*got \(5, 5\)'):
        reconstruct(pixel_model, images, mask=torch.zeros(5, 5))
    with pytest.raises(ValueError, match='not both'):
        reconstruct(pixel_model, images, 0.5, mask=torch.zeros(64))
    with pytest.raises(ValueError, match=r'\[0, 1\).*sample\(\)'):
        reconstruct(pixel_model, images, mask_ratio=1.0)
    with pytest.raises(TypeError, match='uint8'):
        reconstruct(pixel_model, np.zeros((64, 64, 3), np.float32))
    with pytest.raises(FileNotFoundError, match='nope.png'):
        reconstruct(pixel_model, ['nope.png'])
    with pytest.raises(ValueError, match=r'autocast_dtype'):
        reconstruct(pixel_model, images, 0.5, autocast_dtype='int8')


def test_autocast_keeps_projector_fp32(kl_model, images):
    seen = {'projector': set(), 'vit': set()}

    def record(key):

        def hook(module, args, output):
            seen[key].add(output.dtype)

        return hook

    handles = [
        m.register_forward_hook(record('projector'))
        for m in kl_model.projector.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    handles.append(kl_model.backbone.blocks[0].attn.qkv.register_forward_hook(
        record('vit')))
    handles.append(
        kl_model.neck.decoder_pred.register_forward_hook(record('vit')))
    try:
        out = reconstruct(kl_model,
                          images,
                          mask_ratio=0.5,
                          autocast_dtype='bf16')
    finally:
        for h in handles:
            h.remove()
    assert seen['projector'] == {torch.float32}
    assert seen['vit'] == {torch.bfloat16}
    assert out['pred_latent'].dtype == torch.float32
    ref = reconstruct(kl_model, images, mask_ratio=0.5)
    assert torch.equal(out['mask'], ref['mask'])


def test_region_to_token_mask_rule(pixel_model):
    region = np.zeros((64, 64), bool)
    region[7, 7] = True  # one pixel of patch (0, 0)
    region[8:16, 8:12] = True  # half of patch (1, 1)
    mask = region_to_token_mask(region, pixel_model)
    assert mask.nonzero().flatten().tolist() == [0, 9]
    mask = region_to_token_mask(region, pixel_model, min_coverage=0.4)
    assert mask.nonzero().flatten().tolist() == [9]


@pytest.mark.parametrize('name', ['pixel_model', 'kl_model'])
def test_inpaint_changes_only_the_region(name, request, images):
    model = request.getfixturevalue(name)
    region = np.zeros((64, 64), np.uint8)
    region[10:20, 30:45] = 1  # patches rows 1-2, cols 3-5
    out = inpaint(model, images[0], region)
    inside = out['pixel_mask']
    assert int(out['mask'].sum()) == 6
    assert int(inside.sum()) == 6 * 64
    assert bool(inside[10:20, 30:45].all())
    assert torch.equal(out['inpainted'][:, ~inside], images[0][:, ~inside])
    assert not torch.equal(out['inpainted'][:, inside], images[0][:, inside])


def test_inpaint_mask_at_image_size_and_errors(pixel_model):
    img = np.full((128, 128, 3), 200, np.uint8)
    region = np.zeros((128, 128), bool)
    region[:64, :64] = True  # top-left quarter of the image
    out = inpaint(pixel_model, img, region)
    assert out['mask'].reshape(8, 8)[:4, :4].all()
    assert int(out['mask'].sum()) == 16
    with pytest.raises(ValueError,
                       match=r'\(128, 128\).*\(64, 64\).*'
                       r'got shape \(10, 10\)'):
        inpaint(pixel_model, img, np.ones((10, 10), bool))
    with pytest.raises(ValueError, match='no latent patch'):
        inpaint(pixel_model, img, np.zeros((64, 64), bool))
