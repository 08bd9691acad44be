# scikit-learn's digits (no download) as an unlabelled pretraining set: the
# 1,438 training images, upsampled to 32 x 32 RGB uint8 (DigitsDataset).
# No flip: digits are not mirror-symmetric.
img_size = 32
train_pipeline = [dict(type='mmpretrain.PackInputs')]
val_pipeline = [dict(type='mmpretrain.PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='DigitsDataset',
        split='train',
        img_size=img_size,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='DigitsDataset',
        split='val',
        img_size=img_size,
        pipeline=val_pipeline))
test_dataloader = val_dataloader
