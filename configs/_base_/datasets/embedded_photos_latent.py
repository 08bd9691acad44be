# embedded_photos.py, latent-first, for configs whose model has a projector.
_base_ = ['./embedded_photos.py', './latent_first.py']

# Latent-first: the 2048 training crops are encoded once by the frozen
# projector (4 seeded views of the flip pipeline, fp16) into
# data/latent_cache/EmbeddedPhotos_<key> at the start of the first run
# (LatentCacheHook); later runs, and other configs with the same projector
# and data, reuse it. Each epoch serves one random view of every crop.
# Encode every crop at every iteration instead (a fresh flip each time):
#   --cfg-options train_dataloader.dataset.encode_on_the_fly=True
# Validation stays on images: metrics and grids compare with the photos.
train_dataloader = dict(
    dataset=dict(_delete_=True, **_base_.latent_first,
                 dataset=_base_.train_dataloader.dataset))
