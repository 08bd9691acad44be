# "w/o MDS" ablation (paper Table 5): MAE's fixed mask ratio 0.75.
_base_ = ['./lmd_vit-b_in1k_cs.py']
default_hooks = dict(
    mask_ratio=dict(
        scheduler=dict(_delete_=True, type='FixedMaskRatio', ratio=0.75)))
