# ImageNet-1K for linear probing: MAE's weak augmentation (RandomResizedCrop
# 224 + flip), the fine-tuning validation pipeline.
_base_ = ['./in1k_finetune.py']

train_pipeline = [
    dict(type='mmpretrain.LoadImageFromFile'),
    dict(
        type='mmpretrain.RandomResizedCrop',
        scale=224,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]
train_dataloader = dict(
    batch_size=512, dataset=dict(pipeline=train_pipeline))
