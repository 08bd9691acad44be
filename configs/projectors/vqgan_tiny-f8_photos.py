# Stage-1 CPU demo: train a tiny VQ-GAN projector (preset tiny-f8, 3.2 M
# parameters, 1024 codes, 64 px -> 8x8x4 latent) on 64 px crops of the
# embedded photos (docs/en/stage1.md). A few minutes on 2 CPU cores.
_base_ = [
    '../_base_/datasets/embedded_photos.py',
    '../_base_/default_runtime.py',
]

# Data: 64 px crops (the base's crop_size), batch 8 (about 1-2 s per
# iteration on 2 free cores). 64 held-out crops of the 2 validation photos.
train_dataloader = dict(batch_size=8, dataset=dict(crop_size=64))
val_dataloader = dict(batch_size=16, dataset=dict(crop_size=64, num_crops=64))
test_dataloader = val_dataloader

# Model: VQGAN losses (codebook + 0.25 x commitment, paper eq. 4; the
# codebook perplexity is logged). perceptual_weight=0: no LPIPS backbone
# weights exist offline (with weights in $TORCH_HOME/hub/checkpoints set it
# to 1.0).
# disc_start=2000 lies beyond this demo's 200 iterations: the GAN stays off
# (a PatchGAN this early only lowers PSNR); raise max_iters to see it start.
model = dict(
    type='AutoencoderTrainer',
    projector=dict(type='VQGANProjector', preset='tiny-f8', beta=0.25),
    discriminator=dict(type='NLayerDiscriminator', ndf=32, n_layers=3),
    rec_loss='l1',
    rec_reduction='mean',
    perceptual_weight=0.0,
    codebook_weight=1.0,
    disc_weight=0.5,
    disc_start=2000)

# Optimizers: one Adam per network, betas (0.5, 0.9) as in taming / LDM;
# lr 2e-3 (LDM's 4.5e-6 x batch is for 10^5+ iterations).
optim_wrapper = dict(
    constructor='AutoencoderOptimWrapperConstructor',
    generator=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=2e-3, betas=(0.5, 0.9)),
        clip_grad=dict(max_norm=1.0)),
    discriminator=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=2e-3, betas=(0.5, 0.9))))

# Schedule: 200 iterations (the CPU budget; see docs/en/stage1.md for what a
# longer run gives), 20 warm-up, cosine decay (both optimizers).
max_iters = 200
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', T_max=max_iters - 20, eta_min=1e-5,
         by_epoch=False, begin=20, end=max_iters),
]
log_processor = dict(by_epoch=False)

# Reconstruction quality (decode(encode(x)), quantised codes) on held-out
# crops; tools/analysis_tools/eval_projector.py adds the bicubic baseline.
val_evaluator = [dict(type='PSNR'), dict(type='SSIM')]
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
