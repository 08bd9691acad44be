# Official LMD pretraining recipe: Adan, lr = base_lr * batch / 256,
# weight decay 0.05 except norms, biases, position embeddings and tokens,
# gradient-norm clip 10, 1 warm-up epoch then cosine to 1e-8.
# lmd_toolkit's Adan (lmd_toolkit/engine/optimizers.py): the same update as
# mmpretrain.Adan, as one multi-tensor (foreach) call over all param groups.
_base_ = ['./no_weight_decay.py']

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='Adan',
        lr=3e-4 * 64 / 256,
        betas=(0.98, 0.92, 0.90),
        eps=1e-8,
        weight_decay=0.05),
    clip_grad=dict(max_norm=10.0))

max_epochs = 400
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - 1,
        eta_min=1e-8,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
# Learning rate above is for batch 64; scaled for other total batch sizes.
auto_scale_lr = dict(base_batch_size=64)
