# The dataloader settings of the in-memory datasets (embedded photos,
# digits): no worker processes (the images are in memory already),
# shuffled training, the default collate. A dataset block inherits this and
# states its batch size and dataset.
train_dataloader = dict(
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
val_dataloader = dict(
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
test_dataloader = val_dataloader
