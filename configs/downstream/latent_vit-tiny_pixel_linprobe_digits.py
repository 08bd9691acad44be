# Linear probe of the tiny digits LMD encoder: frozen encoder, mean-pooled
# tokens (no fc_norm), BatchNorm (no affine) + linear head, SGD, 20 epochs.
# Run: python tools/train.py configs/downstream/latent_vit-tiny_pixel_linprobe_digits.py
_base_ = [
    '../_base_/models/classifiers/latent_vit-tiny_pixel_digits.py',
    '../_base_/datasets/digits.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(use_fc_norm=False, drop_path_rate=0.0,
                  freeze_encoder=True),
    neck=dict(type='mmpretrain.ClsBatchNormNeck', input_features=128),
    head=dict(
        loss=dict(_delete_=True, type='mmpretrain.CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

# SGD (MAE offers it beside LARS), no weight decay, cosine.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0))
max_epochs = 20
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0.0,
         by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

custom_hooks = [dict(type='AccuracyIncreaseTimeHook', topk=(1, 5))]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=True, interval=max_epochs, max_keep_ckpts=1))
log_processor = dict(by_epoch=True)
