# default_runtime.py for LMD pretraining, plus the MaskRatioSchedulerHook:
# the mask ratio of every iteration, from (global iteration, total
# iterations), on the paper's best schedule, cosine 0.15 -> 0.75 (LMD-CS;
# the *_ps / *_us / *_fixed leaves replace the scheduler).
_base_ = ['./default_runtime.py']

default_hooks = dict(
    mask_ratio=dict(
        type='MaskRatioSchedulerHook',
        scheduler=dict(type='CosineMaskRatio', min_ratio=0.15,
                       max_ratio=0.75)))
