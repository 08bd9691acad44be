# The demo (README's main job): a tiny LMD on 64 px crops of the photographs
# embedded in scikit-image / scikit-learn / matplotlib, on a 2-core CPU in a
# few minutes. Pixel space (identity projector) with patch 8: 64 tokens of
# 8*8*3 values. Cosine mask-ratio schedule 0.15 -> 0.75 over 2000 iterations
# (AdamW, 100 warm-up, cosine LR); PSNR / SSIM at ratio 0.5 on held-out
# photos and reconstruction grids every 500.
_base_ = [
    '_base_/models/lmd_vit-tiny_p8.py',
    '_base_/datasets/embedded_photos.py',
    '_base_/schedules/adamw_iter_pretrain.py',
    '_base_/photos_runtime.py',
]
