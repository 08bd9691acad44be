# LMD-US: as LMD-CS with the uniform (linear) schedule 0.15 -> 0.75.
_base_ = ['./lmd_vit-b_in1k_cs.py']
default_hooks = dict(
    mask_ratio=dict(scheduler=dict(_delete_=True, type='UniformMaskRatio')))
