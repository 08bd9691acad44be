# Linear probe of an LMD ViT-B (kl-f8 latent, patch 2) on ImageNet-1K,
# MAE's recipe: frozen encoder, class token, BatchNorm (no affine) + linear
# head, LARS lr 0.1 * batch / 256, 90 epochs, no mixup / smoothing.
# Run: tools/dist_train.sh configs/downstream/latent_vit-b_kl-f8_linprobe_in1k.py 8
#   --cfg-options model.backbone.init_cfg.checkpoint=PRETRAINED.pth
_base_ = [
    '../_base_/models/classifiers/latent_vit-b_p2_kl-f8.py',
    '../_base_/datasets/in1k_linprobe.py',
    '../_base_/schedules/lars_linprobe.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(global_pool='cls', drop_path_rate=0.0,
                  freeze_encoder=True),
    neck=dict(type='mmpretrain.ClsBatchNormNeck', input_features=768),
    head=dict(
        loss=dict(_delete_=True, type='mmpretrain.CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]),
    data_preprocessor=dict(batch_augments=None))
# MAE probes with batch 16384 (here: 32 processes x 512).
train_dataloader = dict(batch_size=512)

custom_hooks = [dict(type='AccuracyIncreaseTimeHook', topk=(1, 5))]
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=2,
                    save_best='accuracy/top1', rule='greater'))
log_processor = dict(by_epoch=True)
