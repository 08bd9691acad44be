"""Optimizer wrappers, and mmengine's plumbing kept out of ``torch.compile``.

mmengine's ``Runner(compile=True)`` compiles ``model.train_step``. Traced
whole by dynamo (torch 2.14) it breaks in two places:

* ``optim_wrapper.update_params``: dynamo fails on mmengine's ``ConfigDict``
  param groups (``InternalTorchDynamoError``), and a traced optimizer would
  recompile whenever the scheduled learning rate changes;
* ``data_preprocessor.cast_data``: deep-copying the data samples' metainfo
  guards on the ``id()`` of its strings (the image paths), so every batch
  recompiles until ``recompile_limit`` (8) is hit.

Importing this module (every Runner built under the ``lmd_toolkit`` scope
does) applies the shim ``lmd_toolkit.utils.compat.
exclude_plumbing_from_compile`` (also part of ``apply_compat_shims``), which
makes both functions ``torch.compiler.disable``-d: they run eagerly,
and what is compiled is the model's forward (and, through AOT autograd, its
backward). Without compilation nothing changes. See docs/en/precision.md.

``MixedPrecisionOptimWrapper`` (the type ``configs/_base_/precision/amp.py``
names) picks the mixed-precision wrapper of the machine it is built on.
"""
from contextlib import contextmanager
from typing import Iterator, Union

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from torch import nn

from lmd_toolkit.registry import OPTIM_WRAPPERS
from lmd_toolkit.utils.compat import exclude_plumbing_from_compile


exclude_plumbing_from_compile()


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under ``torch.autocast`` on any
    device, without loss scaling (bf16 needs none).

    mmengine's ``AmpOptimWrapper`` refuses to run without a GPU; this one
    gives ``--amp`` bf16 autocast on CPU too. The frozen projector always
    runs in fp32 (it leaves autocast itself).

    Args:
        dtype (str | torch.dtype): Autocast dtype. Defaults to 'bfloat16'.
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype) if isinstance(dtype,
                                                              str) else dtype

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        param = next(model.parameters(), None)
        device_type = param.device.type if param is not None else 'cpu'
        with super().optim_context(model), torch.autocast(
                device_type=device_type, dtype=self.cast_dtype):
            yield


def mixed_precision_choice() -> dict:
    """The wrapper type and arguments mixed precision means on this machine.

    bf16 autocast without loss scaling on CPU and on GPUs with native bf16
    (CUDA compute capability >= 8.0); fp16 with dynamic loss scaling
    (mmengine's ``AmpOptimWrapper``) on older GPUs.

    Returns:
        dict: ``type`` ('AutocastOptimWrapper' or 'AmpOptimWrapper') and its
        defaults (``dtype``, and ``loss_scale`` for fp16).
    """
    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported(
            including_emulation=False):
        return dict(type='AmpOptimWrapper', dtype='float16',
                    loss_scale='dynamic')
    return dict(type='AutocastOptimWrapper', dtype='bfloat16')


@OPTIM_WRAPPERS.register_module(name='MixedPrecisionOptimWrapper')
def build_mixed_precision_optim_wrapper(**kwargs) -> OptimWrapper:
    """Build the mixed-precision wrapper of this machine
    (``mixed_precision_choice``): ``AutocastOptimWrapper`` (bf16) on CPU and
    bf16 GPUs, ``AmpOptimWrapper`` (fp16, dynamic loss scaling) on older
    GPUs. ``dtype`` / ``loss_scale`` given in the config are kept. The choice
    is logged.

    Args:
        **kwargs: The ``optim_wrapper`` config without ``type`` (optimizer,
            clip_grad, accumulative_counts, ...).

    Returns:
        OptimWrapper: The chosen wrapper.
    """
    choice = mixed_precision_choice()
    wrapper = choice.pop('type')
    for key, value in choice.items():
        kwargs.setdefault(key, value)
    if wrapper == 'AmpOptimWrapper':
        built = AmpOptimWrapper(**kwargs)
    else:
        kwargs.pop('loss_scale', None)  # bf16 needs none
        built = AutocastOptimWrapper(**kwargs)
    print_log(f'MixedPrecisionOptimWrapper: {wrapper} (dtype '
              f'{kwargs["dtype"]}).', logger='current')
    return built
