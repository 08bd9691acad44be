"""The README's main job: LMD in a latent space, both stages, one command.

    python tools/demo.py [--work-dir work_dirs/demo] [--retrain-stage1]
                         [--stage1-iters N] [--stage2-iters N]

Stage 1 trains the tiny KL-VAE projector of
``configs/projectors/klvae_tiny-f8_photos.py`` on the embedded photos and
compares its reconstructions with bicubic 8x down-up sampling on held-out
crops; an existing stage-1 checkpoint of the same recipe is reused (one of
another recipe is kept as ``<name>.stale``). Stage 2 trains
``configs/lmd_vit-tiny_klvae_photos_cs.py`` (a tiny LMD, cosine mask-ratio
schedule) on that projector's latents, encoded once into
``<work-dir>/latent_cache`` at its start (a second run reuses them), and
writes image-space reconstruction grids (the predicted latents decoded by the projector). Each stage is a plain
mmengine Runner, as ``tools/train.py`` runs it.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.logging import print_log  # noqa: E402

from lmd_toolkit.apis.pipelines import (ensure_stage1, set_budget,  # noqa: E402,E501
                                        train_in_process)
from lmd_toolkit.utils.launch import load_config  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
STAGE1 = 'configs/projectors/klvae_tiny-f8_photos.py'
STAGE2 = 'configs/lmd_vit-tiny_klvae_photos_cs.py'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo',
                        help='stage1/ and stage2/ go here')
    parser.add_argument('--stage1-config', default=STAGE1)
    parser.add_argument('--stage2-config', default=STAGE2)
    parser.add_argument('--stage1-iters', type=int,
                        help='budget of stage 1 (default: the config\'s)')
    parser.add_argument('--stage2-iters', type=int,
                        help='budget of stage 2 (default: the config\'s)')
    parser.add_argument('--retrain-stage1', action='store_true',
                        help='train stage 1 even if its checkpoint exists')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    stage1_dir = osp.join(args.work_dir, 'stage1')
    stage2_dir = osp.join(args.work_dir, 'stage2')

    # Stage 1: the projector (reused when its checkpoint exists).
    projector_ckpt = ensure_stage1(args.stage1_config, stage1_dir,
                                   args.stage1_iters, args.retrain_stage1)
    # Reconstruction PSNR vs bicubic on the held-out crops (own process:
    # the evaluation tool prints its table and writes JSON + PNG).
    subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools/analysis_tools/eval_projector.py'),
        args.stage1_config, projector_ckpt
    ], check=True)
    with open(projector_ckpt + '.projector_eval.json') as f:
        stage1 = json.load(f)

    # Stage 2: LMD on the frozen projector's latents, encoded once into
    # <work-dir>/latent_cache at its start (reused by a second run).
    cfg = load_config(args.stage2_config,
                      dict(model=dict(projector=dict(
                          checkpoint=projector_ckpt))),
                      work_dir=stage2_dir)
    cache_root = osp.join(args.work_dir, 'latent_cache')
    if cfg.train_dataloader.dataset.get('type') == 'LatentCacheDataset':
        cfg.train_dataloader.dataset.cache_dir = cache_root
    if args.stage2_iters is not None:
        set_budget(cfg, args.stage2_iters)
    lmd_ckpt = train_in_process(cfg)

    print_log(
        '\nDemo done.\n'
        f'  stage 1 projector: {projector_ckpt}\n'
        f'    held-out PSNR {_fmt(stage1, "projector")} dB vs bicubic 8x '
        f'{_fmt(stage1, "bicubic")} dB (the projector is better on '
        f'{stage1.get("projector_wins", "?")} of {stage1.get("num_images")} '
        f'crops); grid {projector_ckpt}.projector_eval.png\n'
        f'  stage 2 LMD: {lmd_ckpt}\n'
        f'    trained from the latent cache in {cache_root} '
        f'({_cache_note(stage2_dir)})\n'
        f'    reconstruction grids (decoded by the projector): '
        f'{osp.join(stage2_dir, "reconstructions")}/iter_*.png',
        logger='current')


def _cache_note(work_dir: str) -> str:
    """How long stage 2 took to build (or find) its latent cache."""
    path = osp.join(work_dir, 'latent_cache.json')
    if not osp.isfile(path):
        return 'encoded on the fly'
    with open(path) as f:
        return f"ready in {json.load(f)['seconds']:.1f} s"


def _fmt(result: dict, row: str) -> str:
    """PSNR of the row whose name starts with ``row`` ('bicubic x8')."""
    for name, metrics in result.get('results', {}).items():
        if name.startswith(row) and 'PSNR' in metrics:
            return f"{metrics['PSNR']:.2f}"
    return 'n/a'


if __name__ == '__main__':
    main()
