"""Model wrappers."""
from typing import Any, Dict, List, Optional, Sequence, Union

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


@MODEL_WRAPPERS.register_module()
class AutoencoderDataParallel(nn.Module):
    """Data parallelism for models that step several optimizers in their
    own ``train_step`` (``AutoencoderTrainer``: autoencoder, then
    discriminator).

    mmengine's ``MMDistributedDataParallel.train_step`` computes one loss
    through the wrapper's forward and so bypasses such a ``train_step``;
    ``MMSeparateDistributedDataParallel`` wraps every child in its own DDP,
    which hides the child's methods (``projector.encode_posterior``) behind
    the DDP module. This wrapper keeps the model as it is: it broadcasts
    rank 0's parameters and buffers once, so that every process starts from
    the same weights, and calls ``module.train_step``, whose optimizer steps
    average the gradients over the processes before stepping (the
    ``AutoencoderTrainer`` does so). Buffers (the discriminator's BatchNorm
    statistics) are not synchronised after the start: only rank 0's are
    saved. Set ``model_wrapper_cfg = dict(type=
    'lmd_toolkit.AutoencoderDataParallel')`` in the config.

    Args:
        module (nn.Module): The model, with ``train_step``, ``val_step`` and
            ``test_step``.
        broadcast_buffers (bool): Accepted for config compatibility with
            DDP wrappers; buffers are broadcast once either way.
            Defaults to False.
        find_unused_parameters (bool): Accepted for config compatibility;
            unused. Defaults to False.
    """

    def __init__(self,
                 module: nn.Module,
                 broadcast_buffers: bool = False,
                 find_unused_parameters: bool = False) -> None:
        super().__init__()
        from mmengine.dist import broadcast
        self.module = module
        for tensor in list(module.parameters()) + list(module.buffers()):
            broadcast(tensor.data, src=0)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Any) -> Dict[str, torch.Tensor]:
        """``module.train_step`` (which synchronises the gradients)."""
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data: Union[dict, tuple, list]) -> List[dict]:
        """``module.val_step``; each process predicts its own shard."""
        return self.module.val_step(data)

    def test_step(self, data: Union[dict, tuple, list]) -> List[dict]:
        """``module.test_step``."""
        return self.module.test_step(data)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)
