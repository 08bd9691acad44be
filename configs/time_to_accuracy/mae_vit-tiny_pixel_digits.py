# MAE side of tools/analysis_tools/time_to_accuracy.py: mmpretrain's MAE of
# ../mae_vit-tiny_pixel_photos.py unchanged (6 + 2 blocks, 192 wide, patch 8,
# fixed mask ratio 0.75, raw pixel targets, AdamW lr 1e-3, batch 16, linear
# warm-up + cosine LR) pretrained on the images that the LMD side
# (lmd_vit-tiny_klvae_digits-cache_cs.py) encodes into its latent cache.
_base_ = ['../mae_vit-tiny_pixel_photos.py']

# The 1,438 training digits (8 x 8 grey, bicubic to 64 px, 3 channels: the
# projector's input size), no flip (digits are not mirror-symmetric). The
# tool puts the training split of its --data here (the same for both
# models); the val split is only for the frozen-feature probes.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='DigitsDataset',
        split='train',
        img_size=64,
        pipeline=[dict(type='mmpretrain.PackInputs')]))

# The tool gives the budget in seconds and sets max_iters (and the LR
# schedule, with lmd_toolkit.apis.pipelines.set_budget) from a measured
# time per iteration. No checkpoints: the encoder is probed in memory.
default_hooks = dict(checkpoint=None)
