# LSUN bedrooms exported to image files (e.g. with the LSUN toolkit's
# `export`), any folder depth:
#   data/lsun/bedroom_train/0/00/000038527b455eacb05f9b9b3a8b2a5fa6b8a7c5.webp
# Read by ImageFolderDataset (RGB, corrupt files skipped with a warning).
_base_ = ['./loaders.py']

data_root = 'data/lsun/bedroom_train/'

train_pipeline = [
    dict(type='mmpretrain.ResizeEdge', scale=256, edge='short',
         backend='pillow', interpolation='bicubic'),
    dict(type='mmpretrain.RandomCrop', crop_size=256),
    dict(type='mmpretrain.RandomFlip', prob=0.5),
    dict(type='mmpretrain.PackInputs'),
]
train_dataloader = dict(
    dataset=dict(
        type='ImageFolderDataset',
        data_root=data_root,
        pipeline=train_pipeline))
