# A tiny LMD pretrained on the digits images (pixel space, identity
# projector) in one or two minutes on a 2-core CPU, for the downstream checks
# (configs/downstream/*_digits.py, tools/analysis_tools/digits_downstream.py).
# 32 px, patch 8: 16 tokens of 8*8*3 values. Cosine mask-ratio schedule.
_base_ = [
    '_base_/models/lmd_vit-tiny_p8_32px.py',
    '_base_/datasets/digits_pretrain.py',
    '_base_/schedules/adamw_iter_pretrain.py',
    '_base_/lmd_runtime.py',
]

# The demos' AdamW recipe at lr 1.5e-3, 600 iterations, 100 warm-up.
optim_wrapper = dict(optimizer=dict(lr=1.5e-3))
max_iters = 600
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
log_processor = dict(by_epoch=False)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', T_max=max_iters - 100, eta_min=1e-5,
         by_epoch=False, begin=100, end=max_iters),
]

# Reconstruction quality at ratio 0.5 on the held-out digits.
val_evaluator = [dict(type='PSNR')]
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
