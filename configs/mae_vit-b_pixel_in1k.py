# Baseline of tools/reproduce.py --suite in1k (paper Table 1): mmpretrain's
# MAE ViT-B/16 (12 + 8 blocks, decoder 512, fixed mask ratio 0.75, norm_pix)
# on the data, optimiser and schedule of lmd_vit-b_pixel_in1k_cs.py.
_base_ = ['./lmd_vit-b_pixel_in1k_cs.py']

model = dict(
    _delete_=True,
    type='mmpretrain.MAE',
    backbone=dict(type='mmpretrain.MAEViT', arch='b', img_size=224,
                  patch_size=16, mask_ratio=0.75),
    neck=dict(
        type='mmpretrain.MAEPretrainDecoder',
        num_patches=196,
        patch_size=16,
        in_chans=3,
        embed_dim=768,
        decoder_embed_dim=512,
        decoder_depth=8,
        decoder_num_heads=16,
        mlp_ratio=4.),
    head=dict(
        type='mmpretrain.MAEPretrainHead',
        norm_pix=True,
        patch_size=16,
        loss=dict(type='mmpretrain.PixelReconstructionLoss',
                  criterion='L2')),
    # Pixels to [-1, 1], as LMDDataPreprocessor does.
    data_preprocessor=dict(
        type='mmpretrain.SelfSupDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=False))

# MAE has no mask-ratio schedule and no reconstruction mode: the default
# hooks without the mask-ratio and visualization hooks, and no validation.
default_hooks = dict(
    _delete_=True,
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=5000, by_epoch=False,
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
