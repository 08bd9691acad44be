"""Identity projector: the paper's "w/o LSP" ablation (pixel space)."""
from typing import Dict, Optional, Tuple

from torch import Tensor

from lmd_toolkit.registry import MODELS
from .base import BaseProjector


@MODELS.register_module()
class IdentityProjector(BaseProjector):
    """A projector that returns the image itself as the "latent".

    Paper: `LMD <https://arxiv.org/abs/2312.07971>`_, Table 5 "w/o LSP":
    masking diffusion directly on pixels. ``encode(x) = scale_factor * x``,
    ``decode(z) = z / scale_factor``; 3 latent channels, no down-sampling,
    no parameters, no stage-1 regulariser.

    Args:
        scale_factor (float): Latents are returned as ``scale_factor * x``.
            Defaults to 1.0.
        init_cfg (dict, optional): Unused (no weights); kept for the common
            projector interface. Defaults to None.
    """

    latent_channels = 3
    downsample_factor = 1
    cacheable = False  # its "latents" are the images
    scale_is_buffer = False  # no weights: a plain float

    def __init__(self,
                 scale_factor: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(scale_factor=scale_factor, init_cfg=init_cfg)
        self.freeze()

    def _encode(self, x: Tensor) -> Tensor:
        return x

    def _decode(self, z: Tensor) -> Tensor:
        return z

    def reconstruct(self,
                    x: Tensor,
                    sample_posterior: bool = True
                    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """The image itself and no regulariser (a zero ``loss``)."""
        return x, dict(loss=x.new_zeros(()))
