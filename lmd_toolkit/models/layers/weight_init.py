"""Weight initialisation shared by the LMD encoder and decoder (in code)."""
from typing import Optional, Union

import torch.nn as nn


def init_transformer_weights(module: nn.Module) -> None:
    """Initialise every sub-module of ``module`` in place.

    Linear: xavier-uniform weight, zero bias. Conv2d (the patch embedding):
    xavier-uniform on the weight viewed as a ``(out, in * k * k)`` Linear,
    zero bias. LayerNorm: weight 1, bias 0. Parameters that are not inside
    these layers (class / mask tokens) are left to the caller.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight.view(m.weight.shape[0], -1))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def is_pretrained_cfg(init_cfg: Optional[Union[dict, list]]) -> bool:
    """Whether an mmengine ``init_cfg`` loads a checkpoint (``Pretrained``),
    in which case the code initialisation is skipped."""
    cfgs = init_cfg if isinstance(init_cfg, list) else [init_cfg]
    return any(
        isinstance(c, dict) and c.get('type') == 'Pretrained' for c in cfgs)
