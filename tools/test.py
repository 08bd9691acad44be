"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [options]``.

Runs the config's ``test_dataloader`` / ``test_evaluator`` and writes the
metrics to ``<work_dir>/test_results.json``.

Before anything is built the config is checked
(``lmd_toolkit.utils.validate.check_config``, mode 'test') and the checkpoint
is read once with the safe loader (``torch.load(weights_only=True)``); after
the Runner has built the model, the checkpoint's weights are checked against
it key by key, so a checkpoint of another architecture stops with one
``StateDictMismatchError`` instead of being evaluated
(docs/en/reliability.md). The results file is written atomically, only when
the evaluation has succeeded: a failed run leaves an earlier one untouched.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.dist import is_main_process  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from lmd_toolkit.apis.inference import (EVAL_CHECKPOINT_FIX,  # noqa: E402
                                        EVAL_CHECKPOINT_ROLE,
                                        check_checkpoint,
                                        checkpoint_state_dict,
                                        load_checkpoint_strict)
from lmd_toolkit.utils.fileio import atomic_write  # noqa: E402
from lmd_toolkit.utils.fileio import safe_torch_load  # noqa: E402
from lmd_toolkit.utils.fileio import UnreadableFileError  # noqa: E402
from lmd_toolkit.utils.launch import (destroy_distributed,  # noqa: E402
                                      load_config, runner_arg_parser)
from lmd_toolkit.utils.state_dict import StateDictMismatchError  # noqa: E402,E501
from lmd_toolkit.utils.validate import ConfigValueError  # noqa: E402
from lmd_toolkit.utils.validate import check_config  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = runner_arg_parser('Test an lmd-toolkit model', 'test',
                               'test_dataloader.batch_size=8')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for logs and results')
    return parser.parse_args()


def use_loaded_checkpoint(runner: Runner, checkpoint: dict) -> None:
    """Make ``runner.test()`` load ``checkpoint`` (already read and checked)
    strictly, at the point where mmengine loads ``load_from`` (after the
    ``before_run`` hooks, with the ``after_load_checkpoint`` hooks), without
    reading the file again."""

    def load_checkpoint(filename, map_location='cpu', strict=False,
                        revise_keys=None):
        runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        load_checkpoint_strict(runner.model, filename, loaded=checkpoint)
        runner._has_loaded = True
        runner.logger.info(f'Load checkpoint from {filename} (strict)')
        return checkpoint

    runner.load_checkpoint = load_checkpoint


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.launcher,
                      args.work_dir)
    check_config(cfg, 'test')
    # Read once, safely, before anything is built; checked against the
    # model as soon as the Runner has built it.
    checkpoint = safe_torch_load(args.checkpoint, EVAL_CHECKPOINT_ROLE,
                                 EVAL_CHECKPOINT_FIX)
    checkpoint_state_dict(checkpoint, args.checkpoint)  # tensors at all?
    cfg.load_from = args.checkpoint
    cfg.resume = False
    runner = Runner.from_cfg(cfg)
    check_checkpoint(runner.model, checkpoint, args.checkpoint)
    use_loaded_checkpoint(runner, checkpoint)
    metrics = runner.test()
    if not runner._has_loaded:
        raise RuntimeError(f'tools/test.py: the Runner did not load '
                           f'{args.checkpoint}; no results written.')
    if is_main_process():
        out = osp.join(runner.work_dir, 'test_results.json')
        results = dict(
            config=args.config,
            checkpoint=args.checkpoint,
            metrics={k: float(v)
                     for k, v in metrics.items()})
        with atomic_write(out) as f:
            json.dump(results, f, indent=2)
        runner.logger.info(f'Metrics written to {out}')
    destroy_distributed()


if __name__ == '__main__':
    try:
        main()
    except (UnreadableFileError, StateDictMismatchError,
            ConfigValueError) as error:  # one message, no traceback
        sys.exit(f'error: {error}')
