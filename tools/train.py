"""Train a model from a config: ``python tools/train.py CONFIG [options]``."""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from lmd_toolkit.datasets.latent_cache import check_latent_cache_config  # noqa: E402,E501
from lmd_toolkit.utils.launch import (build_runner,  # noqa: E402
                                      destroy_distributed, load_config,
                                      merge_amp_block, runner_arg_parser)
from lmd_toolkit.utils.validate import check_config  # noqa: E402
from lmd_toolkit.utils.workdir import (find_resume_checkpoint,  # noqa: E402
                                       work_dir_lock)


def parse_args() -> argparse.Namespace:
    parser = runner_arg_parser('Train an lmd-toolkit model', 'train',
                               'train_cfg.max_iters=100')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CKPT, or from the latest intact checkpoint in the '
        'work dir when no path is given')
    parser.add_argument(
        '--resume-with-changes',
        action='store_true',
        help='resume although the config differs from the checkpoint\'s '
        '(the differences are logged); sets '
        'default_hooks.resume.allow_config_changes=True')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: merge configs/_base_/precision/amp.py '
        '(bf16 autocast on CPU and bf16 GPUs, fp16 loss scaling on older '
        'GPUs)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.launcher,
                      args.work_dir)
    if args.amp:
        merge_amp_block(cfg)
    # Values that cannot work are refused before any model is built.
    check_config(cfg, 'train')
    check_latent_cache_config(cfg)
    if args.resume_with_changes:
        if args.resume is None:
            raise SystemExit('--resume-with-changes needs --resume.')
        cfg.default_hooks.resume.allow_config_changes = True
    with work_dir_lock(cfg.work_dir):
        if args.resume is not None:
            # An intact checkpoint: the named one, or with no path the one
            # last_checkpoint names, else the newest intact one (warned).
            cfg.load_from = find_resume_checkpoint(cfg.work_dir, args.resume)
            cfg.resume = cfg.load_from is not None
        runner = build_runner(cfg)
        runner.train()
    destroy_distributed()


if __name__ == '__main__':
    from lmd_toolkit.datasets.latent_cache import (LatentCacheSpaceError,
                                                   RandomProjectorError)
    from lmd_toolkit.engine.hooks import (NonFiniteTrainingError,
                                          ResumeConfigError)
    from lmd_toolkit.utils.fileio import UnreadableFileError
    from lmd_toolkit.utils.state_dict import StateDictMismatchError
    from lmd_toolkit.utils.validate import ConfigValueError
    from lmd_toolkit.utils.workdir import WorkDirLockedError
    try:
        main()
    except (ConfigValueError, RandomProjectorError, WorkDirLockedError,
            UnreadableFileError, ResumeConfigError, StateDictMismatchError,
            NonFiniteTrainingError, LatentCacheSpaceError) as error:
        # The toolkit's named failures: one message, no traceback.
        sys.exit(f'{type(error).__name__}: {error}')
