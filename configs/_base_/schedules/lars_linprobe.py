# MAE's linear probe: LARS, lr = 0.1 * batch / 256, no weight decay,
# 10 warm-up epochs then cosine, 90 epochs (batch 16384 in MAE).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='mmpretrain.LARS', lr=0.1 * 16384 / 256, weight_decay=0.0,
        momentum=0.9))

max_epochs = 90
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 10, eta_min=0.0,
         by_epoch=True, begin=10, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(base_batch_size=16384)
