# An iteration budget, stated once: max_iters. Everything else follows it:
# a linear warm-up over the first 5 % of the iterations (at least 1) from
# 0.01 x lr, then cosine to 1e-5 (the shape of every pretraining config
# here); validation, checkpoint and reconstruction grids once, at the end;
# about 10 log lines. Mask-ratio schedules need nothing: they are functions
# of (iteration, max_iters). The tools set the one number
# (lmd_toolkit.apis.pipelines.set_budget: tools/demo.py --stage2-iters,
# tools/reproduce.py --iters, time_to_accuracy.py's measured budgets).
max_iters = 2000
warmup_iters = max(1, max_iters // 20)

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters,
         eta_min=1e-5, by_epoch=False, begin=warmup_iters, end=max_iters),
]
# Merged into the hooks the config has (a hook it lacks stays absent; a
# shorter logger interval is kept).
default_hooks = dict(
    checkpoint=dict(interval=max_iters),
    logger=dict(interval=max(1, max_iters // 10)),
    visualization=dict(interval=max_iters))
