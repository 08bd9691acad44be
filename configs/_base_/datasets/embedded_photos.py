# Crops of the real photographs shipped inside scikit-image, scikit-learn
# and matplotlib (no download): 9 photos for training, 2 held out for
# validation (docs/en/datasets.md). RGB uint8 crops of `crop_size` pixels.
_base_ = ['./in_memory_loaders.py']

crop_size = 64

# The crops are already drawn at random positions (seeded): only flip.
train_pipeline = [
    dict(type='mmpretrain.RandomFlip', prob=0.5),
    dict(type='mmpretrain.PackInputs'),
]
val_pipeline = [dict(type='mmpretrain.PackInputs')]

train_dataloader = dict(
    batch_size=16,
    dataset=dict(
        type='EmbeddedPhotos',
        split='train',
        crop_size=crop_size,
        num_crops=2048,
        pipeline=train_pipeline))
# The held-out photos, 128 crops.
val_dataloader = dict(
    batch_size=16,
    dataset=dict(train_dataloader['dataset'], split='val', num_crops=128,
                 pipeline=val_pipeline))
test_dataloader = val_dataloader
# Reconstruction quality on the held-out crops (LMD: at
# model.eval_mask_ratio; projectors: decode(encode(x))).
val_evaluator = [dict(type='PSNR'), dict(type='SSIM')]
test_evaluator = val_evaluator
