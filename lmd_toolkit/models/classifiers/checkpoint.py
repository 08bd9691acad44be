"""Map LMD pretraining weights onto the latent classifier.

An LMD pretraining checkpoint (``LatentMaskingDiffusion``) holds
``backbone.*`` (the encoder), ``neck.*`` (decoder), ``head.*`` and, when they
are persistent, ``projector.*``. The classifier (``mmpretrain
ImageClassifier`` with a :class:`LatentViTBackbone`) names the same tensors
``backbone.encoder.*`` and ``backbone.projector.*``; the decoder has no place
in it.
"""
from typing import Dict, List, Tuple

import torch
from torch import Tensor

#: Key prefixes of an LMD pretraining state dict.
ENCODER_PREFIX = 'backbone.'
PROJECTOR_PREFIX = 'projector.'
#: Where the classifier keeps them.
CLASSIFIER_ENCODER_PREFIX = 'backbone.encoder.'
CLASSIFIER_PROJECTOR_PREFIX = 'backbone.projector.'


def extract_state_dict(checkpoint: dict) -> Dict[str, Tensor]:
    """The state dict of a loaded checkpoint: its ``state_dict`` (mmengine)
    or ``model`` (MAE style) entry, or the object itself; a DDP
    ``module.`` prefix is removed."""
    state_dict = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(state_dict, dict) and isinstance(
                state_dict.get(key), dict):
            state_dict = state_dict[key]
            break
    if not isinstance(state_dict, dict):
        raise TypeError(f'not a state dict: {type(state_dict).__name__}')
    return {
        (k[len('module.'):] if k.startswith('module.') else k): v
        for k, v in state_dict.items()
    }


def lmd_to_classifier(
        state_dict: Dict[str, Tensor],
        keep_projector: bool = True
) -> Tuple[Dict[str, Tensor], List[str]]:
    """Rename an LMD pretraining state dict to the classifier's names.

    Args:
        state_dict (dict): ``LatentMaskingDiffusion`` state dict.
        keep_projector (bool): Keep ``projector.*`` (as
            ``backbone.projector.*``) so that the classifier checkpoint is
            self-contained. Defaults to True.

    Returns:
        tuple: The classifier state dict (same tensor objects) and the sorted
        list of dropped keys (decoder, pretraining head, projector when not
        kept).
    """
    out, dropped = {}, []
    for key, value in state_dict.items():
        if key.startswith(ENCODER_PREFIX):
            out[CLASSIFIER_ENCODER_PREFIX + key[len(ENCODER_PREFIX):]] = value
        elif key.startswith(PROJECTOR_PREFIX) and keep_projector:
            out[CLASSIFIER_PROJECTOR_PREFIX +
                key[len(PROJECTOR_PREFIX):]] = value
        else:
            dropped.append(key)
    if not any(k.startswith(CLASSIFIER_ENCODER_PREFIX) for k in out):
        raise KeyError('no encoder key (backbone.*) found: not an LMD '
                       'pretraining checkpoint?')
    return out, sorted(dropped)


def load_encoder_state(encoder: torch.nn.Module,
                       state_dict: Dict[str, Tensor]) -> Dict[str, list]:
    """Load encoder weights (``LMDViT`` names, no prefix) into ``encoder``.

    ``pos_embed`` is the fixed sin-cos table: when the checkpoint's grid
    differs from the encoder's, the encoder keeps its own table, built for
    its grid (no interpolation is needed for a fixed table).

    Args:
        encoder (nn.Module): An ``LMDViT``.
        state_dict (dict): Its weights, keys without prefix.

    Returns:
        dict: ``missing``, ``unexpected`` and ``rebuilt`` key lists.
    """
    state_dict = dict(state_dict)
    rebuilt = []
    own = encoder.state_dict()
    for key in ('pos_embed', ):
        if key in state_dict and key in own and \
                state_dict[key].shape != own[key].shape:
            del state_dict[key]
            rebuilt.append(key)
    result = encoder.load_state_dict(state_dict, strict=False)
    return dict(
        missing=sorted(set(result.missing_keys) - set(rebuilt)),
        unexpected=sorted(result.unexpected_keys),
        rebuilt=rebuilt)
