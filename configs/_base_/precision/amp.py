# Mixed precision (docs/en/precision.md): tools/train.py --amp merges
# exactly this block into the config (mmengine refuses a key in two files of
# one _base_ list, and the schedules set optim_wrapper: a config that always
# trains in mixed precision states this one line itself).
# MixedPrecisionOptimWrapper picks the wrapper when the Runner builds it:
# bf16 autocast without loss scaling (AutocastOptimWrapper) on CPU and on
# GPUs with native bf16, fp16 with dynamic loss scaling (mmengine's
# AmpOptimWrapper) on older GPUs. Parameters, gradients and optimizer state
# stay fp32; the frozen projector encodes in fp32 outside autocast. The
# rest of the config's optim_wrapper (optimizer, clip_grad, ...) is kept.
optim_wrapper = dict(type='MixedPrecisionOptimWrapper')
