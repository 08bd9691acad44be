# Fine-tune an LMD ViT-B (kl-f8 latent, patch 2) on ImageNet-1K, MAE's
# recipe (paper Table 2, MAT@1 / MAT@5): AdamW + layer decay 0.65, drop path
# 0.1, mixup 0.8 / cutmix 1.0, label smoothing 0.1, 100 epochs, batch 1024.
# Run: tools/dist_train.sh configs/downstream/latent_vit-b_kl-f8_finetune_in1k.py 8
#   --cfg-options model.backbone.init_cfg.checkpoint=PRETRAINED.pth
_base_ = [
    '../_base_/models/classifiers/latent_vit-b_p2_kl-f8.py',
    '../_base_/datasets/in1k_finetune.py',
    '../_base_/schedules/adamw_lrd_finetune.py',
    '../_base_/default_runtime.py',
]

# MAT@1 / MAT@5 from every validation (work_dir/accuracy_time.json, .png).
custom_hooks = [dict(type='AccuracyIncreaseTimeHook', topk=(1, 5))]
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=2,
                    save_best='accuracy/top1', rule='greater'))
log_processor = dict(by_epoch=True)
