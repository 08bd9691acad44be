"""Model wrappers."""
from typing import Optional, Sequence

import torch
from mmengine.model import MMDistributedDataParallel
from torch import nn

from lmd_toolkit.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class LMDDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's ``MMDistributedDataParallel`` that also runs on CPU.

    mmengine's Runner passes ``device_ids=[LOCAL_RANK]`` to every DDP
    wrapper; torch rejects ``device_ids`` for a CPU module (``ValueError``).
    This wrapper drops ``device_ids`` when the module's parameters are not
    on a CUDA device, so gloo training on CPU works. On GPU it is identical
    to ``MMDistributedDataParallel``. See ``docs/en/compatibility.md``.

    Args:
        module (nn.Module): The model to wrap.
        detect_anomalous_params (bool): Find parameters that receive no
            gradient (debugging only, slow). Defaults to False.
        device_ids (Sequence[int], optional): CUDA devices, ignored for CPU
            modules. Defaults to None.
    """

    def __init__(self,
                 module: nn.Module,
                 detect_anomalous_params: bool = False,
                 device_ids: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        if device_ids is not None and not _on_cuda(module):
            device_ids = None
        super().__init__(
            module=module,
            detect_anomalous_params=detect_anomalous_params,
            device_ids=device_ids,
            **kwargs)


def _on_cuda(module: nn.Module) -> bool:
    param = next(module.parameters(), None)
    return param is not None and param.device.type == 'cuda' and \
        torch.cuda.is_available()
