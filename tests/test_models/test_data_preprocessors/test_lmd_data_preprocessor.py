import pytest
import torch

from lmd_toolkit.models import LMDDataPreprocessor


def test_tensor_and_list_inputs_map_to_minus_one_one():
    pre = LMDDataPreprocessor()
    imgs = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    imgs[0, 0, 0, 0], imgs[0, 0, 0, 1] = 0, 255
    out = pre(dict(inputs=imgs, data_samples=['a', 'b']))
    assert out['inputs'].dtype == torch.float32
    assert out['inputs'][0, 0, 0, 0] == -1 and out['inputs'][0, 0, 0, 1] == 1
    torch.testing.assert_close(out['inputs'], imgs.float() / 127.5 - 1)
    assert out['data_samples'] == ['a', 'b']
    out_list = pre(dict(inputs=list(imgs)))
    torch.testing.assert_close(out_list['inputs'], out['inputs'])
    assert out_list['data_samples'] is None


def test_to_rgb_flips_channels():
    imgs = torch.randint(0, 256, (1, 3, 2, 2), dtype=torch.uint8)
    flipped = LMDDataPreprocessor(to_rgb=True)(dict(inputs=imgs))['inputs']
    plain = LMDDataPreprocessor()(dict(inputs=imgs))['inputs']
    torch.testing.assert_close(flipped, plain[:, [2, 1, 0]])


def test_errors():
    pre = LMDDataPreprocessor()
    with pytest.raises(ValueError, match='different sizes'):
        pre(dict(inputs=[torch.zeros(3, 4, 4), torch.zeros(3, 5, 4)]))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        pre(dict(inputs=torch.zeros(1, 1, 4, 4)))
