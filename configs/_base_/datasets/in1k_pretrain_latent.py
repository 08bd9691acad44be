# in1k_pretrain.py, latent-first: every training image is encoded once by
# the model's frozen projector, 4 seeded views of the RandomResizedCrop +
# flip pipeline, fp16 (1.28 M x 4 x 28 x 28 x 4 values = 32 GB on disk), at
# the start of the first run (LatentCacheHook; under dist_train.sh every
# rank encodes its share). 400 epochs then cost 4 encodes per image instead
# of 400. Fresh crops every epoch instead (the official code's way, about 2x
# the time of an LMD patch-4 step per batch for kl-f8):
#   --cfg-options train_dataloader.dataset.encode_on_the_fly=True
_base_ = ['./in1k_pretrain.py', './latent_first.py']

# The ImageNet dataset of in1k_pretrain.py, wrapped; the cache is built 64
# images per encode call, read by 8 worker processes.
train_dataloader = dict(
    dataset=dict(_delete_=True, **_base_.latent_first,
                 dataset=_base_.train_dataloader.dataset,
                 batch_size=64, num_workers=8))
