# The digits fine-tuning config shrunk for tests: a random 2-block encoder
# of width 32, 3 epochs, validation every epoch.
_base_ = ['../../../configs/downstream/latent_vit-tiny_pixel_finetune_digits.py']

model = dict(
    backbone=dict(
        encoder=dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2)),
        init_cfg=None),
    head=dict(in_channels=32))
optim_wrapper = dict(optimizer=dict(lr=3e-3))
max_epochs = 3
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5,
         by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
