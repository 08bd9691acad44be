"""Optimizer wrappers."""
from contextlib import contextmanager
from typing import Iterator, Union

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from lmd_toolkit.registry import OPTIM_WRAPPERS


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
