"""Convert an LMD pretraining checkpoint into a latent-classifier checkpoint.

``backbone.*`` (encoder) -> ``backbone.encoder.*``, ``projector.*`` ->
``backbone.projector.*`` (kept by default so that the classifier checkpoint
is self-contained; ``--drop-projector`` leaves it to the projector's own
config), decoder (``neck.*``) and pretraining head dropped and reported. The
result loads with ``load_from=DST`` (or ``init_cfg=dict(type='Pretrained',
checkpoint=DST)`` on the whole classifier); only the classification head
(and ``fc_norm`` / the BN neck) is then new. SRC is read with the safe loader
(a truncated file is named in one error, exit code 1); DST is written
atomically.

Example::

    python tools/model_converters/lmd_to_mmpretrain.py \\
        work_dirs/lmd_vit-b_in1k_cs/epoch_400.pth work_dirs/lmd_vit-b_cls.pth
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from lmd_toolkit.models.classifiers.checkpoint import (  # noqa: E402
    extract_state_dict, lmd_to_classifier)
from lmd_toolkit.utils.compat import apply_compat_shims  # noqa: E402
from lmd_toolkit.utils.fileio import (UnreadableFileError,  # noqa: E402
                                      atomic_torch_save, safe_torch_load)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='LMD pretraining checkpoint (.pth)')
    parser.add_argument('dst', help='output classifier checkpoint (.pth)')
    parser.add_argument(
        '--drop-projector', action='store_true',
        help='leave out the projector weights')
    parser.add_argument(
        '--force', action='store_true', help='overwrite DST if it exists')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if osp.exists(args.dst) and not args.force:
        print(f'error: {args.dst} exists; pass --force to overwrite it.',
              file=sys.stderr)
        return 1
    apply_compat_shims()  # mmengine checkpoints load with weights_only=True
    try:
        obj = safe_torch_load(
            args.src, 'LMD pretraining checkpoint',
            'Pass a complete iter_N.pth / epoch_N.pth of an LMD pretraining '
            'run (a truncated file cannot be repaired: use an earlier one).')
        state_dict, dropped = lmd_to_classifier(
            extract_state_dict(obj), keep_projector=not args.drop_projector)
    except (UnreadableFileError, KeyError, TypeError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    n_encoder = sum(k.startswith('backbone.encoder.') for k in state_dict)
    n_projector = len(state_dict) - n_encoder
    meta = dict(converted_from=osp.abspath(args.src),
                converter='lmd_to_mmpretrain', dropped_keys=dropped)
    # a failed save never leaves a partial DST
    atomic_torch_save(dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'{args.dst}: {n_encoder} encoder and {n_projector} projector '
          f'tensors; dropped {len(dropped)} keys '
          f'({", ".join(sorted({k.split(".")[0] for k in dropped})) or "-"}).')
    return 0


if __name__ == '__main__':
    sys.exit(main())
