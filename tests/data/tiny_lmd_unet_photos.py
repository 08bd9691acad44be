# The pixel demo config shrunk for tests with the "w/o MAE" U-Net: a
# 64x64x3 image as 8x8 patches, 16 base channels, two levels.
_base_ = ['./tiny_lmd_photos.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='LMDUNet',
        latent_size=64,
        patch_size=8,
        base_channels=16,
        channel_mults=(1, 2),
        num_res_blocks=1),
    neck=dict(_delete_=True, type='LMDUNetDecoder'))
