# Baseline of tools/reproduce.py --suite in1k (paper Table 1): mmpretrain's
# MAE ViT-B/16 (12 + 8 blocks, decoder 512, fixed mask ratio 0.75, norm_pix)
# on the data, optimiser and schedule of lmd_vit-b_pixel_in1k_cs.py.
_base_ = [
    '_base_/models/mae_vit-b_p16.py',
    '_base_/datasets/in1k_pretrain_latent.py',
    '_base_/schedules/adan_coslr_pretrain.py',
    '_base_/mae_runtime.py',
]

# Pixels are not cached: the ImageNet images are served as they are, with a
# fresh crop every epoch (as lmd_vit-b_pixel_in1k_cs.py).
train_dataloader = dict(dataset=dict(encode_on_the_fly=True))
# No validation (MAE has no reconstruction mode).
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
