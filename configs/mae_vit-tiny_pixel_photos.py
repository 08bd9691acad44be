# Baseline of tools/reproduce.py (paper Table 1): mmpretrain's own MAE
# (MAEViT + MAEPretrainDecoder + MAEPretrainHead) at the size, data, budget
# and optimiser of lmd_vit-tiny_pixel_photos_cs.py: 64 px, patch 8, 6 + 2
# blocks, MAE's fixed mask ratio 0.75, raw pixel targets (norm_pix=False,
# like the pixel LMD config, so both losses are on the same target).
_base_ = [
    '_base_/models/mae_vit-tiny_p8.py',
    '_base_/datasets/embedded_photos.py',
    '_base_/schedules/adamw_iter_pretrain.py',
    '_base_/mae_runtime.py',
]

log_processor = dict(by_epoch=False)
default_hooks = dict(checkpoint=dict(interval=500, max_keep_ckpts=2))
# No validation (MAE has no reconstruction mode).
train_cfg = dict(val_interval=10**9)
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
