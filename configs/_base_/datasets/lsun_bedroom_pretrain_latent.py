# lsun_bedroom_pretrain.py, latent-first: every bedroom image is encoded
# once by the model's frozen projector (4 seeded views of the crop + flip
# pipeline, fp16) at the start of the first run (LatentCacheHook). Encode on
# the fly instead:
#   --cfg-options train_dataloader.dataset.encode_on_the_fly=True
_base_ = ['./lsun_bedroom_pretrain.py', './latent_first.py']

# The image folder of lsun_bedroom_pretrain.py, wrapped; the cache is built
# 64 images per encode call, read by 8 worker processes.
train_dataloader = dict(
    dataset=dict(_delete_=True, **_base_.latent_first,
                 dataset=_base_.train_dataloader.dataset,
                 batch_size=64, num_workers=8))
