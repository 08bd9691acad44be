# in1k_pretrain.py, latent-first: every training image is encoded once by
# the model's frozen projector, 4 seeded views of the RandomResizedCrop +
# flip pipeline, fp16 (1.28 M x 4 x 28 x 28 x 4 values = 32 GB on disk), at
# the start of the first run (LatentCacheHook; under dist_train.sh every
# rank encodes its share). 400 epochs then cost 4 encodes per image instead
# of 400. Fresh crops every epoch instead (the official code's way, about 2x
# the time of an LMD patch-4 step per batch for kl-f8):
#   --cfg-options train_dataloader.dataset.encode_on_the_fly=True
_base_ = ['./in1k_pretrain.py']

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LatentCacheDataset',
        cache_dir='data/latent_cache',
        dataset=dict(
            type='mmpretrain.ImageNet',
            data_root='data/imagenet/',
            split='train',
            pipeline=[
                dict(type='mmpretrain.LoadImageFromFile',
                     imdecode_backend='pillow'),
                dict(type='mmpretrain.RandomResizedCrop', scale=224,
                     crop_ratio_range=(0.2, 1.0), backend='pillow',
                     interpolation='bicubic'),
                dict(type='mmpretrain.RandomFlip', prob=0.5),
                dict(type='mmpretrain.PackInputs'),
            ]),
        num_views=4,
        views='random',
        batch_size=64,
        num_workers=8))
