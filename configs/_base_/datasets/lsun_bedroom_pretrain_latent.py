# lsun_bedroom_pretrain.py, latent-first: every bedroom image is encoded
# once by the model's frozen projector (4 seeded views of the crop + flip
# pipeline, fp16) at the start of the first run (LatentCacheHook). Encode on
# the fly instead:
#   --cfg-options train_dataloader.dataset.encode_on_the_fly=True
_base_ = ['./lsun_bedroom_pretrain.py']

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LatentCacheDataset',
        cache_dir='data/latent_cache',
        dataset=dict(
            type='ImageFolderDataset',
            data_root='data/lsun/bedroom_train/',
            pipeline=[
                dict(type='mmpretrain.ResizeEdge', scale=256, edge='short',
                     backend='pillow', interpolation='bicubic'),
                dict(type='mmpretrain.RandomCrop', crop_size=256),
                dict(type='mmpretrain.RandomFlip', prob=0.5),
                dict(type='mmpretrain.PackInputs'),
            ]),
        num_views=4,
        views='random',
        batch_size=64,
        num_workers=8))
