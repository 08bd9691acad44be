# Training efficiency (docs/en/metrics.md): TrainingEfficiencyHook records
# every iteration's time and loss and writes MIT / MLT / MLI to
# <work_dir>/efficiency.json. Its windows follow the run's length max_iters
# (tools/reproduce.py sets it to the row's budget): the loss is smoothed
# over 1 in 20 iterations (at least 2), and MIT leaves out the first 1 in 20
# (lazy photo decoding, dataloader start-up; at least 1, at most 10).
max_iters = 2000
custom_hooks = [
    dict(
        type='TrainingEfficiencyHook',
        window=max(2, max_iters // 20),
        skip_first=min(10, max(1, max_iters // 20))),
]
