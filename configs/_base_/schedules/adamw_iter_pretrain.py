# The CPU demos' pretraining recipe (iteration based): AdamW (0.9, 0.95),
# lr 1e-3, weight decay 0.05 except norms, biases, position embeddings and
# tokens, gradient-norm clip 3; 2000 iterations (validation every 500),
# linear warm-up over 100 from 0.01 x lr, then cosine to 1e-5. Leaf configs
# with another length restate max_iters, train_cfg and param_scheduler.
_base_ = ['./no_weight_decay.py']

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=3.0))

max_iters = 2000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', T_max=max_iters - 100, eta_min=1e-5,
         by_epoch=False, begin=100, end=max_iters),
]
