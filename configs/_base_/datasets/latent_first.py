# The latent-first request the *_latent.py dataset blocks wrap their image
# dataset in, stated once: a LatentCacheDataset under data/latent_cache
# holding 4 seeded views of every training image (each a run of the image
# pipeline), fp16; every item draws one of its views at random. A block sets
#   train_dataloader.dataset = dict(**latent_first, dataset=<its images>)
# reading both from its bases as `_base_.<name>` (plain Python: mmengine
# hands a config its bases' values as `_base_`).
latent_first = dict(
    type='LatentCacheDataset',
    cache_dir='data/latent_cache',
    num_views=4,
    views='random')
