# ImageNet-1K for linear probing: MAE's weak augmentation, i.e. the
# fine-tuning pipeline of in1k_finetune.py without its strong augmentation
# (RandomResizedCrop 224 + flip, no RandAugment, no random erasing); the
# fine-tuning validation pipeline.
_base_ = ['./in1k_finetune.py']

train_pipeline = [
    t for t in _base_.train_pipeline
    if t['type'] not in ('mmpretrain.RandAugment', 'mmpretrain.RandomErasing')
]
train_dataloader = dict(
    batch_size=512, dataset=dict(pipeline=train_pipeline))
