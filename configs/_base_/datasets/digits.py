# scikit-learn's digits for classification: fixed split of 1,438 training
# and 359 validation images, 32 x 32 RGB uint8, labels 0..9. Top-1 / top-5
# accuracy. The images are RGB already (no to_rgb in the preprocessor).
_base_ = ['./in_memory_loaders.py']

img_size = 32
train_pipeline = [dict(type='mmpretrain.PackInputs')]
test_pipeline = [dict(type='mmpretrain.PackInputs')]

train_dataloader = dict(
    batch_size=64,
    dataset=dict(
        type='DigitsDataset',
        split='train',
        img_size=img_size,
        pipeline=train_pipeline))
# The held-out split of the same dataset.
val_dataloader = dict(
    batch_size=128,
    dataset=dict(train_dataloader['dataset'], split='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
