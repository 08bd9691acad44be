# LMD-PS: as LMD-CS with the piecewise schedule (0.15 -> 0.40 over T/6,
# hold to T/3, 0.40 -> 0.75 by 2T/3, hold).
_base_ = ['./lmd_vit-b_in1k_cs.py']
default_hooks = dict(
    mask_ratio=dict(scheduler=dict(_delete_=True, type='PiecewiseMaskRatio')))
