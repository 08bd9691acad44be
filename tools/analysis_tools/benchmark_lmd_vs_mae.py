"""Time one training iteration of LMD (ViT-B, 12 + 8 blocks) against
mmpretrain's MAE ViT-B/16, side by side in one process.

Per iteration: forward + backward + AdamW step on the same fixed batch at the
same mask ratio, the two models alternating iteration by iteration.
Warm-up iterations are excluded; the median of ``--iters``
timed iterations is reported for each mask ratio, with the ratio LMD / MAE.

Modes:
  (default) pixel: LMD with the identity projector ("w/o LSP") and 16 x 16
      pixel patches, so the comparison isolates the transformer (196 tokens
      of 768 values for both models).
  --latent: LMD on a 4-channel 28 x 28 latent with p = 2 (196 tokens of 16
      values), the latent the KL-f8 projector gives for 224 px. The frozen
      projector's encode is NOT timed (a fixed random latent is used).

Example:
  python tools/analysis_tools/benchmark_lmd_vs_mae.py --iters 3 --warmup 1
"""
import argparse
import statistics
import time
from typing import Callable, List, Tuple

import torch
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper

import lmd_toolkit.models  # noqa: F401  (registers the LMD parts)
from lmd_toolkit.registry import MODELS

RATIOS = (0.15, 0.4, 0.75)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--iters',
                        type=int,
                        default=5,
                        help='timed iterations per model and ratio')
    parser.add_argument('--warmup',
                        type=int,
                        default=2,
                        help='untimed iterations per model and ratio')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--threads',
                        type=int,
                        default=None,
                        help='torch.set_num_threads (default: torch\'s)')
    parser.add_argument('--latent',
                        action='store_true',
                        help='LMD on a 4 x (img/8)^2 latent with p=2')
    return parser.parse_args()


def build_lmd(img_size: int, latent: bool) -> torch.nn.Module:
    """The discriminative ViT-B variant: 12 encoder + 8 decoder blocks, 512.

    Pixel mode: the whole ``LatentMaskingDiffusion`` with the identity
    projector. Latent mode: its three trainable parts only (called on a
    fixed latent), since no projector maps images to 4 channels for free.
    """
    channels, size, p = (4, img_size // 8, 2) if latent else (3, img_size, 16)
    backbone = dict(type='LMDViT',
                    arch='base',
                    in_channels=channels,
                    latent_size=size,
                    patch_size=p)
    neck = dict(type='LMDDecoder',
                num_patches=(size // p)**2,
                patch_size=p,
                in_channels=channels,
                embed_dims=768,
                decoder_embed_dims=512,
                decoder_depth=8,
                decoder_num_heads=16)
    head = dict(type='LatentReconstructionHead', patch_size=p)
    if latent:
        model = torch.nn.ModuleDict(
            dict(backbone=MODELS.build(backbone),
                 neck=MODELS.build(neck),
                 head=MODELS.build(head)))
        for part in model.values():
            part.init_weights()
        return model
    model = MODELS.build(
        dict(type='LatentMaskingDiffusion',
             projector=dict(type='IdentityProjector'),
             backbone=backbone,
             neck=neck,
             head=head))
    model.init_weights()
    return model


def build_mae(img_size: int) -> torch.nn.Module:
    """mmpretrain's MAE ViT-B/16 (12 + 8 blocks, decoder 512, norm_pix)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MMPRETRAIN_MODELS.build(
            dict(type='MAE',
                 backbone=dict(type='MAEViT',
                               arch='b',
                               img_size=img_size,
                               patch_size=16,
                               mask_ratio=0.75),
                 neck=dict(type='MAEPretrainDecoder',
                           num_patches=(img_size // 16)**2,
                           patch_size=16,
                           in_chans=3,
                           embed_dim=768,
                           decoder_embed_dim=512,
                           decoder_depth=8,
                           decoder_num_heads=16,
                           mlp_ratio=4.),
                 head=dict(type='MAEPretrainHead',
                           norm_pix=True,
                           patch_size=16,
                           loss=dict(type='PixelReconstructionLoss',
                                     criterion='L2')),
                 data_preprocessor=dict(type='SelfSupDataPreprocessor',
                                        mean=[123.675, 116.28, 103.53],
                                        std=[58.395, 57.12, 57.375],
                                        to_rgb=False)))


def adamw(model: torch.nn.Module) -> OptimWrapper:
    params = [p for p in model.parameters() if p.requires_grad]
    return OptimWrapper(torch.optim.AdamW(params, lr=1.5e-4,
                                          weight_decay=0.05))


def paired_medians(step_a: Callable[[], None], step_b: Callable[[], None],
                   iters: int, warmup: int) -> Tuple[float, float]:
    """Median seconds of two steps, alternated a, b, a, b, ... so that both
    see the same load on a shared machine; warm-up steps are not timed."""
    for _ in range(warmup):
        step_a()
        step_b()
    times: Tuple[List[float], List[float]] = ([], [])
    for _ in range(iters):
        for step, bucket in ((step_a, times[0]), (step_b, times[1])):
            start = time.perf_counter()
            step()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # mmengine logs every parameter's initialisation at INFO: keep it quiet.
    MMLogger.get_current_instance().setLevel('WARNING')
    torch.manual_seed(0)
    images = torch.randint(0,
                           256,
                           (args.batch_size, 3, args.img_size, args.img_size),
                           dtype=torch.uint8)
    # mmpretrain's MAE train_step wants one stacked uint8 tensor.
    data = dict(inputs=images, data_samples=None)

    lmd, mae = build_lmd(args.img_size, args.latent), build_mae(args.img_size)
    lmd.train(), mae.train()
    lmd_optim, mae_optim = adamw(lmd), adamw(mae)
    latent = torch.randn(args.batch_size, 4, args.img_size // 8,
                         args.img_size // 8)

    def lmd_step_for(ratio: float) -> Callable[[], None]:
        if not args.latent:
            lmd.mask_ratio = ratio
            return lambda: lmd.train_step(data, lmd_optim)

        def step() -> None:
            x, mask, ids = lmd['backbone'].forward_masked(latent, ratio)
            loss = lmd['head'].loss(lmd['neck'](x, ids), latent, mask)
            lmd_optim.update_params(loss)

        return step

    def mae_step_for(ratio: float) -> Callable[[], None]:
        mae.backbone.mask_ratio = ratio
        return lambda: mae.train_step(data, mae_optim)

    mode = 'latent 4x{0}x{0}, p=2'.format(args.img_size // 8) \
        if args.latent else 'pixels (identity projector), p=16'
    print(f'LMD ViT-B 12+8 ({mode}) vs mmpretrain MAE ViT-B/16 12+8; '
          f'batch {args.batch_size}, {args.img_size} px, '
          f'threads {torch.get_num_threads()}, median of {args.iters} '
          f'after {args.warmup} warm-up')
    print('| mask ratio | LMD s/iter | MAE s/iter | LMD / MAE |')
    print('|---|---|---|---|')
    for ratio in RATIOS:
        t_lmd, t_mae = paired_medians(lmd_step_for(ratio), mae_step_for(ratio),
                                      args.iters, args.warmup)
        print(
            f'| {ratio:.2f} | {t_lmd:.3f} | {t_mae:.3f} | '
            f'{t_lmd / t_mae:.2f} |',
            flush=True)


if __name__ == '__main__':
    main()
