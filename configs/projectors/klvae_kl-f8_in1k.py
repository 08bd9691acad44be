# The LDM kl-f8 recipe (= the Stable Diffusion v1 VAE, the official LMD
# projector): KL-VAE kl-f8 on ImageNet-1K at 256 px with L1 + LPIPS(vgg),
# KL weight 1e-6 and a PatchGAN from iteration 50001 (docs/en/stage1.md).
# Needs a GPU, ImageNet under data/imagenet/ and the LPIPS backbone
# vgg16-397923af.pth in $TORCH_HOME/hub/checkpoints (the build fails with a
# message naming the file otherwise).
_base_ = [
    '../_base_/datasets/in1k_pretrain.py',
    '../_base_/default_runtime.py',
]

# Data: shorter side to 256, random 256 crop, flip (LDM's SmallestMaxSize +
# RandomCrop); batch 12 per GPU as LDM's autoencoder_kl_32x32x4.
train_pipeline = [
    dict(type='mmpretrain.LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='mmpretrain.ResizeEdge', scale=256, edge='short',
         backend='pillow', interpolation='bicubic'),
    dict(type='mmpretrain.RandomCrop', crop_size=256),
    dict(type='mmpretrain.RandomFlip', prob=0.5),
    dict(type='mmpretrain.PackInputs'),
]
train_dataloader = dict(batch_size=12,
                        dataset=dict(pipeline=train_pipeline))

# Model: LDM LPIPSWithDiscriminator(disc_start=50001, kl_weight=1e-6,
# disc_weight=0.5, perceptual_weight=1.0). rec_reduction='sum': LDM sums the
# per-pixel loss over the image (and divides by the batch), the scale the
# KL weight was tuned against. Images are RGB-flipped by the base's
# data_preprocessor (mmcv reads BGR).
model = dict(
    type='AutoencoderTrainer',
    projector=dict(type='KLVAEProjector', preset='kl-f8'),
    discriminator=dict(type='NLayerDiscriminator', ndf=64, n_layers=3,
                       norm='batch'),
    rec_loss='l1',
    rec_reduction='sum',
    perceptual_weight=1.0,
    lpips_net='vgg',
    lpips_checkpoint=None,
    kl_weight=1e-6,
    sample_posterior=True,
    disc_weight=0.5,
    disc_start=50001,
    disc_factor=1.0)

# Optimizers: Adam, betas (0.5, 0.9), lr = 4.5e-6 x total batch (here 1 GPU
# x 12 = 5.4e-5; multiply by the number of GPUs), constant as in LDM.
optim_wrapper = dict(
    constructor='AutoencoderOptimWrapperConstructor',
    generator=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=5.4e-5, betas=(0.5, 0.9))),
    discriminator=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=5.4e-5, betas=(0.5, 0.9))))

# Schedule: iteration based; LDM does not state the length of its kl-f8
# run, 200k iterations leave 150k with the GAN on.
max_iters = 200000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
log_processor = dict(by_epoch=False)

default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=5000, max_keep_ckpts=3))

# Two optimizers step inside AutoencoderTrainer.train_step: this wrapper
# keeps that train_step under torch.distributed (dist_train.sh) and the
# trainer averages the gradients over the processes before each step.
model_wrapper_cfg = dict(type='lmd_toolkit.AutoencoderDataParallel')
