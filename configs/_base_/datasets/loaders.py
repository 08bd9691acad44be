# The training dataloader of the on-disk datasets (ImageNet, LSUN): 8
# workers kept alive across epochs, pinned memory, shuffled, the default
# collate, batch 64 per GPU. A dataset block inherits this and states its
# dataset (and its batch size where it differs).
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
