# The tiny test config under FSDP (configs/_base_/strategies/fsdp.py).
_base_ = ['./tiny_lmd_photos.py', '../../configs/_base_/strategies/fsdp.py']
