"""Print the fully merged config: ``python tools/misc/print_config.py CONFIG``."""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import DictAction  # noqa: E402

from lmd_toolkit.utils.launch import load_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description='Print the merged config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='overrides')
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    print(cfg.pretty_text)


if __name__ == '__main__':
    main()
