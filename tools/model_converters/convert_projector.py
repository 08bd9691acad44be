"""Convert autoencoder (projector) weights between LDM and diffusers names.

Reads any format that ``load_projector_weights`` accepts (LDM / taming
``model.ckpt``, Stable Diffusion checkpoint, bare state dict, diffusers
folder or file), checks it against a projector preset and writes it in LDM
names (what ``KLVAEProjector`` / ``VQGANProjector`` hold) or diffusers names.

Examples::

    # SD v1 checkpoint -> bare kl-f8 projector weights
    python tools/model_converters/convert_projector.py \\
        sd-v1-4.ckpt work_dirs/kl-f8.safetensors
    # projector weights -> a diffusers AutoencoderKL folder
    python tools/model_converters/convert_projector.py \\
        work_dirs/kl-f8.safetensors work_dirs/kl-f8-diffusers --to diffusers
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional

import torch

from lmd_toolkit.models.projectors.checkpoint import (
    CheckpointMismatchError, load_projector_weights, read_checkpoint,
    save_state_dict, suggest_presets)
from lmd_toolkit.models.projectors.formats import (convert_to_ldm,
                                                   diffusers_config,
                                                   ldm_to_diffusers)
from lmd_toolkit.models.projectors.kl_vae import KLVAEProjector
from lmd_toolkit.models.projectors.vqgan import VQGANProjector
from lmd_toolkit.utils.fileio import UnreadableFileError, atomic_write

_WEIGHTS = 'diffusion_pytorch_model.safetensors'
_FILE_SUFFIXES = ('.safetensors', '.pth', '.pt', '.ckpt', '.bin')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='checkpoint file or diffusers folder')
    parser.add_argument(
        'dst', help='output file (.safetensors / .pth ...) or, with --to '
        'diffusers, a folder (config.json + weights)')
    parser.add_argument(
        '--preset', help='projector preset to check against (default: the '
        'preset whose keys and shapes fit exactly)')
    parser.add_argument(
        '--to', choices=['ldm', 'diffusers'], default='ldm',
        help='key names of the output (default: ldm)')
    parser.add_argument(
        '--prefix', help='key prefix of the autoencoder inside SRC '
        '(first_stage_model. is detected automatically)')
    parser.add_argument(
        '--force', action='store_true', help='overwrite DST if it exists')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if osp.exists(args.dst) and not args.force:
        print(f'error: {args.dst} exists; pass --force to overwrite it.',
              file=sys.stderr)
        return 1
    try:
        obj, _ = read_checkpoint(args.src)
    except UnreadableFileError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    state_dict, _ = convert_to_ldm(obj, args.prefix)
    family = 'vq' if 'quantize.embedding.weight' in state_dict else 'kl'
    cls = VQGANProjector if family == 'vq' else KLVAEProjector
    preset = args.preset
    if preset is None:  # the best-fitting preset of the family
        preset, problems = [(p, n) for c, p, n in suggest_presets(state_dict)
                            if c == cls.__name__][0]
        if problems:
            print(f'error: {args.src} fits no {cls.__name__} preset exactly;'
                  ' pass --preset (differences from the closest below).',
                  file=sys.stderr)
    projector = cls(preset=preset)
    try:  # validates names and shapes, reports dropped keys
        report = load_projector_weights(
            projector, obj, args.prefix, source=args.src)
    except CheckpointMismatchError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    state_dict = dict(projector.state_dict())
    stored_scale = report['scale_factor']  # an 'auto' calibration, if any
    if args.to == 'ldm' and stored_scale is not None:
        state_dict['scale_factor'] = torch.tensor(stored_scale)
    if args.to == 'diffusers':
        state_dict = ldm_to_diffusers(state_dict,
                                      len(projector.arch['ch_mult']))
    if args.to == 'diffusers' and not args.dst.endswith(_FILE_SUFFIXES):
        os.makedirs(args.dst, exist_ok=True)
        save_state_dict(state_dict, osp.join(args.dst, _WEIGHTS), args.force)
        with atomic_write(osp.join(args.dst, 'config.json')) as f:
            config = diffusers_config(projector.arch, family)
            if stored_scale is not None:
                config['scaling_factor'] = stored_scale
            json.dump(config, f, indent=2)
    else:
        save_state_dict(state_dict, args.dst, args.force)
    print(f'{args.src} ({report["format"]}, {cls.__name__} preset '
          f'{preset!r}) -> {args.dst} ({args.to} names, '
          f'{len(state_dict)} tensors; dropped '
          f'{len(report["dropped_loss_keys"])} loss keys, ignored '
          f'{len(report["ignored_keys"])} others)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
