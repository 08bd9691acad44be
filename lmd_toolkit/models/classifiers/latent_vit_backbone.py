"""Classification backbone over latents: frozen projector -> LMD encoder."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor

from lmd_toolkit.registry import MODELS
from ..layers import is_pretrained_cfg
from .checkpoint import extract_state_dict, load_encoder_state


@MODELS.register_module()
class LatentViTBackbone(BaseModule):
    """Frozen projector followed by an unmasked ``LMDViT``, pooled.

    Paper: `LMD <https://arxiv.org/abs/2312.07971>`_ (fine-tuning, Table 2).
    The backbone of an mmpretrain ``ImageClassifier``::

        z = projector.encode(x)               # (B, d, h, w), no_grad, frozen
        x = encoder.forward_features(z)       # (B, 1 + L, C), no masking
        f = fc_norm(x[:, 1:].mean(1))         # 'avg'  -> (B, C)
        f = x[:, 0]                           # 'cls'  -> (B, C)
        return (f, )

    ``encoder.forward_features`` ends with the pretrained LayerNorm; 'avg'
    pools the normalised patch tokens and adds a new LayerNorm ``fc_norm``
    (MAE's fine-tuning head norm; MAE drops the encoder norm instead, we keep
    it so that every pretrained tensor is used). Parameter names:
    ``projector.*``, ``encoder.*`` (as in ``LMDViT``), ``fc_norm.*``.

    Args:
        projector (dict): Config of the frozen projector, e.g.
            ``dict(type='KLVAEProjector', ...)`` or
            ``dict(type='IdentityProjector')`` (pixel ablation).
        encoder (dict): Config of the ``LMDViT`` encoder.
        global_pool (str): 'avg' (mean over patch tokens, then ``fc_norm``)
            or 'cls' (the class token). Defaults to 'avg'.
        use_fc_norm (bool): Apply ``fc_norm`` after 'avg' pooling. Linear
            probes set False (the BN neck normalises). Defaults to True.
        drop_path_rate (float, optional): Overrides
            ``encoder.drop_path_rate`` when given. Defaults to None.
        freeze_encoder (bool): Freeze the whole encoder (linear probing);
            it then runs under ``no_grad`` and stays in eval mode.
            Defaults to False.
        frozen_stages (int): Freeze the patch embedding, class token and the
            first ``frozen_stages`` blocks (all blocks and the final norm
            when ``>= num_layers``). Defaults to 0.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=..., prefix='backbone.')`` loads the encoder from an
            LMD pretraining checkpoint (``prefix='backbone.encoder.'`` from a
            classifier checkpoint); a different latent grid keeps the
            encoder's own sin-cos table. Defaults to None.
    """

    def __init__(self,
                 projector: dict,
                 encoder: dict,
                 global_pool: str = 'avg',
                 use_fc_norm: bool = True,
                 drop_path_rate: Optional[float] = None,
                 freeze_encoder: bool = False,
                 frozen_stages: int = 0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if global_pool not in ('avg', 'cls'):
            raise ValueError(f"LatentViTBackbone: global_pool must be 'avg' "
                             f"or 'cls', got {global_pool!r}.")
        self.projector = MODELS.build(projector).freeze()
        encoder = dict(encoder)
        if drop_path_rate is not None:
            encoder['drop_path_rate'] = drop_path_rate
        self.encoder = MODELS.build(encoder)
        if global_pool == 'cls' and not self.encoder.with_cls_token:
            raise ValueError("LatentViTBackbone: global_pool='cls' needs "
                             'encoder.with_cls_token=True.')
        if self.projector.latent_channels != self.encoder.in_channels:
            raise ValueError(
                f'LatentViTBackbone: projector.latent_channels = '
                f'{self.projector.latent_channels} but encoder.in_channels ='
                f' {self.encoder.in_channels}; make them equal.')
        self.global_pool = global_pool
        self.embed_dims = self.encoder.embed_dims
        self.num_layers = self.encoder.num_layers
        self.fc_norm = (nn.LayerNorm(self.embed_dims, eps=1e-6)
                        if global_pool == 'avg' and use_fc_norm else None)
        self.freeze_encoder = freeze_encoder
        self.frozen_stages = self.num_layers + 1 if freeze_encoder \
            else frozen_stages
        self._freeze()

    # --------------------------------------------------------- freezing
    def _frozen_modules(self) -> List[nn.Module]:
        enc, k = self.encoder, self.frozen_stages
        if k <= 0:
            return []
        modules = [enc.patch_embed, *enc.blocks[:k]]
        if k >= self.num_layers:
            modules.append(enc.norm)
        return modules

    def _freeze(self) -> None:
        for module in self._frozen_modules():
            module.requires_grad_(False)
        if self.frozen_stages > 0 and self.encoder.with_cls_token:
            self.encoder.cls_token.requires_grad_(False)

    def train(self, mode: bool = True) -> 'LatentViTBackbone':
        """Frozen modules (and the projector) stay in eval mode."""
        super().train(mode)
        self.projector.train(False)
        if self.freeze_encoder:
            self.encoder.train(False)
        for module in self._frozen_modules():
            module.train(False)
        return self

    # ---------------------------------------------------------- weights
    def init_weights(self) -> None:
        """Initialise in code; then load the encoder if ``init_cfg`` is
        ``Pretrained`` (missing / unexpected keys are logged)."""
        self.projector.init_weights()
        self.encoder.init_weights()
        if self.fc_norm is not None:
            nn.init.ones_(self.fc_norm.weight)
            nn.init.zeros_(self.fc_norm.bias)
        self._is_init = True
        if is_pretrained_cfg(self.init_cfg):
            self.load_pretrained(self.init_cfg['checkpoint'],
                                 self.init_cfg.get('prefix', 'backbone.'))
        self._freeze()

    def load_pretrained(self, checkpoint: str,
                        prefix: str = 'backbone.') -> Dict[str, list]:
        """Load the encoder from a checkpoint's ``prefix`` keys.

        Args:
            checkpoint (str): Path or URL of the checkpoint.
            prefix (str): Key prefix of the encoder inside it:
                ``'backbone.'`` for LMD pretraining checkpoints,
                ``'backbone.encoder.'`` for classifier checkpoints.

        Returns:
            dict: ``missing``, ``unexpected`` and ``rebuilt`` encoder keys.
        """
        obj = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        state_dict = extract_state_dict(obj)
        encoder_state = {
            k[len(prefix):]: v
            for k, v in state_dict.items() if k.startswith(prefix)
        }
        if not encoder_state:
            raise KeyError(f'LatentViTBackbone: no key starts with '
                           f'{prefix!r} in {checkpoint}.')
        report = load_encoder_state(self.encoder, encoder_state)
        print_log(
            f'LatentViTBackbone: loaded {len(encoder_state)} encoder tensors '
            f'from {checkpoint} (prefix {prefix!r}); missing '
            f'{report["missing"]}, unexpected {report["unexpected"]}, '
            f'rebuilt for the new grid {report["rebuilt"]}.',
            logger='current')
        return report

    # ---------------------------------------------------------- forward
    def forward(self, inputs: Tensor) -> Tuple[Tensor]:
        """Images ``(B, 3, H, W)`` in [-1, 1] -> ``((B, C), )``."""
        z = self.projector.encode(inputs)  # (B, d, h, w)
        if self.freeze_encoder:
            with torch.no_grad():
                x = self.encoder.forward_features(z)  # (B, 1 + L, C)
        else:
            x = self.encoder.forward_features(z)
        if self.global_pool == 'cls':
            return (x[:, 0], )
        x = x[:, self.encoder.num_prefix:].mean(dim=1)  # (B, C)
        if self.fc_norm is not None:
            x = self.fc_norm(x)
        return (x, )

    def get_layer_depth(self, param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Layer id for layer-wise lr decay (mmpretrain
        ``LearningRateDecayOptimWrapperConstructor``, through
        ``ImageClassifier.get_layer_depth``).

        Ids: 0 = patch embedding, class token, position table; ``i + 1`` =
        block ``i``; ``num_layers + 1`` = final norm, ``fc_norm`` and
        everything outside the backbone (neck, head). The lr scale is
        ``decay ** (num_layers + 1 - id)``.

        Args:
            param_name (str): Full parameter name.
            prefix (str): The backbone's prefix in ``param_name``.

        Returns:
            tuple: ``(layer_id, num_layers + 2)``.
        """
        max_id = self.num_layers + 2
        if not param_name.startswith(prefix):
            return max_id - 1, max_id
        name = param_name[len(prefix):]
        if name.startswith(('encoder.patch_embed', 'encoder.cls_token',
                            'encoder.pos_embed', 'projector.')):
            return 0, max_id
        if name.startswith('encoder.blocks.'):
            return int(name.split('.')[2]) + 1, max_id
        return max_id - 1, max_id
