"""The LPIPS network, built offline: shared by the perceptual loss of
stage-1 training and the LPIPS metric (``lmd_toolkit.evaluation``), which
imports it from here.

Backbone weights come from a local torchvision file, found by
:func:`resolve_weights_file` (also used by the FID metric), never from the
network.
"""
import os.path as osp
import warnings
from typing import Optional

import torch
from torch import nn

#: torchvision's file name of each backbone's ImageNet weights.
BACKBONE_FILES = {
    'alex': 'alexnet-owt-7be5be79.pth',
    'vgg': 'vgg16-397923af.pth',
    'squeeze': 'squeezenet1_1-b8a52dc0.pth',
}


def torch_checkpoint_dir() -> str:
    """The folder torch keeps downloaded weights in, resolved now:
    ``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch/hub/checkpoints``
    when ``TORCH_HOME`` is unset)."""
    return osp.abspath(osp.join(torch.hub.get_dir(), 'checkpoints'))


def resolve_weights_file(checkpoint: Optional[str], file_name: str,
                         what: str, argument: str) -> str:
    """Find a local weights file; never touch the network.

    Args:
        checkpoint (str, optional): An explicit path given by the user.
        file_name (str): torchvision's file name of the weights, looked up
            in :func:`torch_checkpoint_dir` when ``checkpoint`` is None.
        what (str): What the weights are, for the error message.
        argument (str): The metric argument that takes an explicit path.

    Returns:
        str: An existing file path.
    """
    if checkpoint is not None:
        path = osp.abspath(osp.expanduser(checkpoint))
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{what}: {argument}={checkpoint!r} does not exist '
                f'(resolved to {path}). Point {argument} to the file '
                f'{file_name} (torchvision\'s weights), or set it to None to '
                f'look in {torch_checkpoint_dir()}.')
        return path
    folder = torch_checkpoint_dir()
    path = osp.join(folder, file_name)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{what}: weights file {file_name} not found in {folder} '
            '($TORCH_HOME/hub/checkpoints). This toolkit never downloads '
            f'weights: copy {file_name} (torchvision\'s weights, '
            f'https://download.pytorch.org/models/{file_name}) into that '
            f'folder, or pass its path as {argument}=...')
    return path


def check_lpips_net(net: str) -> None:
    """Raise ``ValueError`` unless ``net`` is an LPIPS backbone name."""
    if net not in BACKBONE_FILES:
        raise ValueError(f'LPIPS net must be one of {sorted(BACKBONE_FILES)},'
                         f' got {net!r}.')


def load_lpips_backbone(backbone: nn.Module, state_dict: dict,
                        source: str) -> None:
    """Copy torchvision ``features.*`` weights into an ``lpips`` backbone.

    ``lpips`` splits torchvision's ``features`` Sequential into ``slice1``,
    ``slice2``, ... keeping the original indices, so ``slice2.3.weight`` is
    torchvision's ``features.3.weight``.
    """
    mapped = {}
    for name in backbone.state_dict():
        source_key = 'features.' + name.split('.', 1)[1]
        if source_key not in state_dict:
            raise KeyError(
                f'{source} has no {source_key!r}: it is not the torchvision '
                'weights file of this LPIPS backbone (expected keys '
                '"features.<index>.weight" / ".bias").')
        mapped[name] = state_dict[source_key]
    backbone.load_state_dict(mapped, strict=True)


def build_lpips_network(net: str, path: Optional[str]) -> nn.Module:
    """A frozen ``lpips.LPIPS`` (v0.1, linear heads shipped with the
    package) with the backbone weights of the torchvision file ``path``
    (``weights_only`` load), or a random backbone when ``path`` is None
    (tests only: the values are not LPIPS).

    Returns:
        nn.Module: In eval mode without gradients; it maps two images
        ``(B, 3, H, W)`` in [-1, 1] to distances ``(B, 1, 1, 1)``.
    """
    import lpips  # optional dependency
    with warnings.catch_warnings():
        # lpips calls torchvision's deprecated ``pretrained=`` argument.
        warnings.simplefilter('ignore', UserWarning)
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    if path is not None:
        state = torch.load(path, map_location='cpu', weights_only=True)
        load_lpips_backbone(model.net, state, path)
    return model.eval().requires_grad_(False)
