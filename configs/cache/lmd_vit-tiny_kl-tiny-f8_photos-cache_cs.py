# lmd_vit-tiny_kl-tiny-f8_photos_cs.py trained from a latent cache of its
# training crops instead of encoding them at every iteration. Make the cache
# first (4 augmented views per crop; same config = same projector):
#   python tools/misc/cache_latents.py \
#       configs/cache/lmd_vit-tiny_kl-tiny-f8_photos_cs.py --views 4
# The model checks at the first batch that the cache was encoded by this
# projector (type, preset, checkpoint SHA-256, scale factor).
_base_ = ['./lmd_vit-tiny_kl-tiny-f8_photos_cs.py']

# One random view of each of the 2048 crops per epoch. Validation stays on
# images (encoded on the fly), so metrics and reconstruction grids compare
# with the real photos.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LatentCacheDataset',
        cache_dir='data/latent_cache/lmd_vit-tiny_kl-tiny-f8_photos_cs_train',
        views='random'))
