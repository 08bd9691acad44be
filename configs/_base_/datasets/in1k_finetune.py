# ImageNet-1K for fine-tuning (mmpretrain's ImageNet format, see
# in1k_pretrain.py): MAE's augmentation - RandomResizedCrop 224, flip,
# RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25; validation resizes
# the short side to 256 and centre-crops 224. Images are BGR here (the
# classifier's preprocessor flips them to RGB).
_base_ = ['./loaders.py']

data_root = 'data/imagenet/'
bgr_mean = [103.53, 116.28, 123.675]

train_pipeline = [
    dict(type='mmpretrain.LoadImageFromFile'),
    dict(
        type='mmpretrain.RandomResizedCrop',
        scale=224,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    # _scope_: RandAugment builds its sub-transforms by mmpretrain names.
    dict(
        type='mmpretrain.RandAugment',
        _scope_='mmpretrain',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[round(x) for x in bgr_mean],
                     interpolation='bicubic')),
    dict(
        type='mmpretrain.RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=[58.395, 57.12, 57.375]),
    dict(type='mmpretrain.PackInputs'),
]
test_pipeline = [
    dict(type='mmpretrain.LoadImageFromFile'),
    dict(
        type='mmpretrain.ResizeEdge',
        scale=256,
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
    dict(type='mmpretrain.CenterCrop', crop_size=224),
    dict(type='mmpretrain.PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    dataset=dict(
        type='mmpretrain.ImageNet',
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
# The validation split: the loader settings of loaders.py, not shuffled.
val_dataloader = dict(
    _base_.train_dataloader,
    batch_size=128,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(train_dataloader['dataset'], split='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
