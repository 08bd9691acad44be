# Generative LMD (8 + 12 blocks, decoder 1024) on LSUN bedrooms at 256 px:
# kl-f8 latent 32 x 32 x 4, patch 2 -> 256 tokens. Cosine schedule, Adan.
_base_ = [
    '_base_/models/lmd_vit-b-gen_p2.py',
    '_base_/datasets/lsun_bedroom_pretrain_latent.py',
    '_base_/schedules/adan_coslr_pretrain.py',
    '_base_/lmd_runtime.py',
]
model = dict(backbone=dict(latent_size=32))

max_epochs = 50
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-8,
         by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True),
]

# 5 x 5 unconditional samples (progressive sampler, 8 steps) every 20k
# iterations, as the paper's Fig. 6: <work_dir>/samples/iter_N.png and
# progress.png (one row per saved iteration).
custom_hooks = [dict(type='SampleGridHook', interval=20000, rows=5, cols=5)]
