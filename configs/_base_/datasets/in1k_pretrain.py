# ImageNet-1K for pretraining, in mmpretrain's ImageNet format:
#   data/imagenet/train/n01440764/n01440764_10026.JPEG ...
#   data/imagenet/meta/train.txt  (optional: "relative/path label" lines)
# Labels are not used by pretraining. Images are read by mmcv (BGR), so the
# data preprocessor flips them to RGB before the projector.
_base_ = ['./loaders.py']

data_root = 'data/imagenet/'
data_preprocessor = dict(type='LMDDataPreprocessor', to_rgb=True)

train_pipeline = [
    dict(type='mmpretrain.LoadImageFromFile', imdecode_backend='pillow'),
    dict(
        type='mmpretrain.RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='mmpretrain.RandomFlip', prob=0.5),
    dict(type='mmpretrain.PackInputs'),
]
train_dataloader = dict(
    dataset=dict(
        type='mmpretrain.ImageNet',
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
