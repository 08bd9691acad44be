# Fine-tune the tiny digits LMD encoder on the digits labels, the ImageNet
# recipe scaled down: AdamW + layer decay 0.65, drop path 0.1, label
# smoothing 0.1, 20 epochs, batch 64 (no mixup / cutmix on 1,438 images).
# Run: python tools/train.py configs/downstream/latent_vit-tiny_pixel_finetune_digits.py
_base_ = [
    '../_base_/models/classifiers/latent_vit-tiny_pixel_digits.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/adamw_lrd_finetune.py',
    '../_base_/default_runtime.py',
]

optim_wrapper = dict(optimizer=dict(lr=1e-3))
max_epochs = 20
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 2, eta_min=1e-6,
         by_epoch=True, begin=2, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
auto_scale_lr = dict(base_batch_size=64)

# MAT@1 / MAT@5 (work_dir/accuracy_time.json and .png).
custom_hooks = [dict(type='AccuracyIncreaseTimeHook', topk=(1, 5))]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=True, interval=max_epochs, max_keep_ckpts=1))
log_processor = dict(by_epoch=True)
