# FSDP: parameters, gradients and optimizer state sharded across the ranks
# (docs/en/distributed.md). Add this file to a config's _base_ list (after
# default_runtime.py) and launch as usual: tools/dist_train.sh CONFIG N.
# Each transformer block of the encoder and of the decoder is one FSDP unit;
# the frozen projector is neither sharded nor in the optimizer. Checkpoints
# hold the full (gathered) state dict, as a DDP run's do.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='lmd_toolkit.LMDFSDPStrategy',
    model_wrapper=dict(type='lmd_toolkit.LMDFullyShardedDataParallel'),
)
