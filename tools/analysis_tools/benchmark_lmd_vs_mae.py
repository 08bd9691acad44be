"""Time LMD training steps (ViT-B 12 + 8 blocks on the kl-f8 latent,
patch 4 and patch 2, from a latent cache and encoding on the fly, fp32 and
bf16) against mmpretrain's MAE ViT-B/16, side by side in one process.

A step is ``model.train_step``: data preprocessing, (on the fly) the frozen
projector's encode, forward, backward, AdamW step. Every step of the matrix,
and a large matmul in each dtype, runs once per round, rounds repeating, so
all see the same load; warm-up rounds are not timed and medians are
reported. Each step's FLOPs (forward + backward) are counted once with
``torch.utils.flop_counter`` and divided by its median time; the fraction
column compares that with the matmul rate of the same run in the same dtype
(the machine's practical limit; the fp32 projector encode of a bf16 step is
held to the fp32 rate).

Variants:
  LMD patch 4 / patch 2: configs/_base_/models/lmd_vit-b_p4.py / _p2.py
      (28 x 28 x 4 latent of 224 px: 49 / 196 tokens), KLVAEProjector
      kl-f8 with random weights (speed does not depend on them).
  cached: a latent batch read from a LatentCacheDataset that
      write_latent_cache made once (rows repeat if the batch is larger than
      --cache-images); the model checks its source and skips the encode.
  otf: the uint8 images -> LMDDataPreprocessor -> projector.encode (fp32,
      outside autocast) -> masked ViT, as the official code trains.
  MAE: mmpretrain 1.2 MAE ViT-B/16 + 8 x 512 decoder at --mae-ratio, on the
      same uint8 images, in the same dtype.
  bf16: torch.autocast around forward (AutocastOptimWrapper) for both.
  cosine-mean: the mean ratio of a CosineMaskRatio run of
      --schedule-iters iterations, computed from the class.

Example (CPU, the recorded run in docs/en/benchmarks.md):
  OMP_WAIT_POLICY=PASSIVE python \\
      tools/analysis_tools/benchmark_lmd_vs_mae.py --threads 2 --iters 5
GPU: tools/analysis_tools/gpu_check.sh (bf16, torch.compile, fused AdamW,
channels-last encode, MFU against the device's bf16 peak).
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import default_collate  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402

from lmd_toolkit.datasets import (EmbeddedPhotos,  # noqa: E402
                                  LatentCacheDataset, write_latent_cache)
from lmd_toolkit.engine.mask_schedulers import CosineMaskRatio  # noqa: E402
from lmd_toolkit.engine.optim_wrappers import \
    AutocastOptimWrapper  # noqa: E402
from lmd_toolkit.models.layers import Block, num_kept_tokens  # noqa: E402
from lmd_toolkit.registry import MODELS  # noqa: E402
from lmd_toolkit.utils import register_all_modules  # noqa: E402
from lmd_toolkit.utils.fileio import atomic_write  # noqa: E402
from step_timing import (MatmulStep, count_flops,  # noqa: E402
                         device_peak_tflops, parse_ratios, round_robin,
                         schedule_mean_ratio)

DTYPES = dict(fp32=torch.float32, bf16=torch.bfloat16)
MODES = ('cached', 'otf')
# 'base': the paper's ViT-B. 'tiny': the same wiring at toy widths, for
# tests and dry runs (seconds on a CPU).
SIZES = dict(
    base=dict(img_size=224, projector='kl-f8', lmd_arch='base',
              embed_dims=768, decoder_embed_dims=512, decoder_depth=8,
              decoder_num_heads=16, mae_arch='b'),
    tiny=dict(img_size=64, projector='tiny-f8',
              lmd_arch=dict(embed_dims=48, num_layers=2, num_heads=3),
              embed_dims=48, decoder_embed_dims=32, decoder_depth=1,
              decoder_num_heads=4,
              mae_arch=dict(embed_dims=48, num_layers=2, num_heads=3,
                            feedforward_channels=192)),
)
MAE_PATCH = 16


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--size', default='base', choices=sorted(SIZES),
                        help="'tiny' only for tests and dry runs")
    parser.add_argument('--img-size', type=int, default=None,
                        help='default: 224 (base), 64 (tiny)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--iters', type=int, default=3,
                        help='timed rounds (each step once per round)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed rounds first')
    parser.add_argument('--patch', type=int, nargs='+', default=[4, 2],
                        choices=[4, 2], help='LMD latent patch sizes')
    parser.add_argument('--modes', nargs='+', default=list(MODES),
                        choices=MODES, help='cached latents / on the fly')
    parser.add_argument('--dtypes', nargs='+', default=list(DTYPES),
                        choices=list(DTYPES))
    parser.add_argument('--ratios', nargs='+',
                        default=['cosine-mean', '0.75'],
                        help="LMD mask ratios: numbers or 'cosine-mean'")
    parser.add_argument('--mae-ratio', type=float, default=0.75)
    parser.add_argument('--schedule-iters', type=int, default=100_000,
                        help='run length T of the cosine mean ratio')
    parser.add_argument('--cache-images', type=int, default=8,
                        help='images written to the latent cache')
    parser.add_argument('--matmul-size', type=int, default=None,
                        help='n of the n^3 limit matmul (default 2048 on '
                        'CPU, 8192 on CUDA)')
    parser.add_argument('--threads', type=int, default=None,
                        help="torch.set_num_threads (default: torch's)")
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile every transformer block')
    parser.add_argument('--compile-backend', default='inductor')
    parser.add_argument('--fused-adamw', action='store_true',
                        help='torch.optim.AdamW(fused=True)')
    parser.add_argument('--channels-last', action='store_true',
                        help='projector weights and encode input in '
                        'channels-last memory format')
    parser.add_argument('--no-fused-attn', action='store_true',
                        help='explicit softmax attention instead of '
                        'F.scaled_dot_product_attention (both models)')
    parser.add_argument('--peak-tflops', type=float, default=None,
                        help='device bf16 peak for MFU (default: looked up '
                        'by GPU name)')
    parser.add_argument('--json', default=None, help='also write results')
    args = parser.parse_args(argv)
    check_args(args, parser.error)
    return args


def check_args(args: argparse.Namespace, error: Callable[[str], None]) -> None:
    """Reject inconsistent options with a message naming them."""
    size = SIZES[args.size]
    if args.img_size is None:
        args.img_size = size['img_size']
    if args.img_size % (8 * 4) or args.img_size % MAE_PATCH:
        error(f'--img-size {args.img_size}: must be divisible by 32 (kl-f8 '
              f'latent and patch 4) and by {MAE_PATCH} (MAE patch)')
    for name in ('batch_size', 'iters', 'cache_images', 'schedule_iters'):
        if getattr(args, name) < 1:
            error(f'--{name.replace("_", "-")} must be >= 1')
    if args.warmup < 0:
        error('--warmup must be >= 0')
    if not 0.0 <= args.mae_ratio < 1.0:
        error(f'--mae-ratio must be in [0, 1), got {args.mae_ratio}')
    try:
        args.ratio_values = parse_ratios(args.ratios, cosine_mean_ratio(args))
    except ValueError as err:
        error(f'--ratios: {err}')
    shown = [f'{r:.3f}' for r in args.ratio_values]
    if len(set(shown)) < len(shown):
        error(f'--ratios: {args.ratios} give the same ratio to 3 decimals '
              f'({shown}); pass distinct ratios')
    try:
        device = torch.device(args.device)
    except RuntimeError:
        device = None
    if device is None or device.type not in ('cpu', 'cuda'):
        error(f"--device must be 'cpu' or 'cuda', got {args.device!r}")
    if device.type == 'cuda' and not torch.cuda.is_available():
        error('--device cuda: torch sees no CUDA device '
              f'(torch {torch.__version__}, CUDA build '
              f'{torch.version.cuda}); run on a GPU machine or use '
              '--device cpu')
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        error('--peak-tflops must be positive')
    if args.matmul_size is None:
        args.matmul_size = 8192 if device.type == 'cuda' else 2048
    args.patch = list(dict.fromkeys(args.patch))
    args.modes = list(dict.fromkeys(args.modes))
    args.dtypes = list(dict.fromkeys(args.dtypes))


def cosine_mean_ratio(args: argparse.Namespace) -> float:
    """Mean ratio of the configs' cosine schedule (0.15 -> 0.75)."""
    return schedule_mean_ratio(CosineMaskRatio(min_ratio=0.15,
                                               max_ratio=0.75),
                               args.schedule_iters)


# ------------------------------------------------------------------ models
def lmd_config(patch: int, size: str, img_size: int,
               fused_attn: bool = True) -> dict:
    """configs/_base_/models/lmd_vit-b_p{patch}.py with a random projector,
    resized to ``img_size`` (and shrunk for ``size='tiny'``)."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', '_base_', 'models',
                 f'lmd_vit-b_p{patch}.py')).model.to_dict()
    spec = SIZES[size]
    latent = img_size // 8  # kl-f8 and tiny-f8 both downsample by 8
    cfg['projector'].update(checkpoint=None, preset=spec['projector'])
    cfg['backbone'].update(arch=spec['lmd_arch'], latent_size=latent,
                           fused_attn=fused_attn)
    cfg['neck'].update(num_patches=(latent // patch)**2,
                       embed_dims=spec['embed_dims'],
                       decoder_embed_dims=spec['decoder_embed_dims'],
                       decoder_depth=spec['decoder_depth'],
                       decoder_num_heads=spec['decoder_num_heads'],
                       fused_attn=fused_attn)
    return cfg


def build_lmd(cfg: dict) -> torch.nn.Module:
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model


def build_mae(size: str, img_size: int, fused_attn: bool = True
              ) -> torch.nn.Module:
    """mmpretrain's MAE ViT-B/16 (12 + 8 blocks, decoder 512, norm_pix)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    spec = SIZES[size]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MMPRETRAIN_MODELS.build(
            dict(type='MAE',
                 backbone=dict(type='MAEViT', arch=spec['mae_arch'],
                               img_size=img_size, patch_size=MAE_PATCH,
                               mask_ratio=0.75),
                 neck=dict(type='MAEPretrainDecoder',
                           num_patches=(img_size // MAE_PATCH)**2,
                           patch_size=MAE_PATCH,
                           in_chans=3,
                           embed_dim=spec['embed_dims'],
                           decoder_embed_dim=spec['decoder_embed_dims'],
                           decoder_depth=spec['decoder_depth'],
                           decoder_num_heads=spec['decoder_num_heads'],
                           mlp_ratio=4.),
                 head=dict(type='MAEPretrainHead', norm_pix=True,
                           patch_size=MAE_PATCH,
                           loss=dict(type='PixelReconstructionLoss',
                                     criterion='L2')),
                 data_preprocessor=dict(type='SelfSupDataPreprocessor',
                                        mean=[123.675, 116.28, 103.53],
                                        std=[58.395, 57.12, 57.375],
                                        to_rgb=False)))
    model.init_weights()
    if not fused_attn:
        from functools import partial

        from mmpretrain.models.utils.attention import \
            scaled_dot_product_attention_pyimpl
        for module in model.modules():
            if hasattr(module, 'scaled_dot_product_attention'):
                module.scaled_dot_product_attention = partial(
                    scaled_dot_product_attention_pyimpl,
                    scale=module.head_dims**-0.5)
    return model


def transformer_blocks(model: torch.nn.Module) -> List[torch.nn.Module]:
    """The pre-norm blocks of LMD (``Block``) and of mmpretrain's MAE
    (``TransformerEncoderLayer``)."""
    from mmpretrain.models.backbones.vision_transformer import \
        TransformerEncoderLayer
    return [
        m for m in model.modules()
        if isinstance(m, (Block, TransformerEncoderLayer))
    ]


def compile_blocks(models: Sequence[torch.nn.Module], backend: str) -> int:
    """``torch.compile`` each transformer block in place (regional
    compilation: blocks of one shape share a compiled graph, so compiling
    takes seconds per shape, not per model). Returns the number of blocks."""
    import torch._dynamo.config as dynamo_config
    # One graph per (block class, token count, dtype): allow enough.
    for name in ('recompile_limit', 'cache_size_limit'):
        if hasattr(dynamo_config, name):
            setattr(dynamo_config, name, 64)
    count = 0
    for model in models:
        for block in transformer_blocks(model):
            block.compile(backend=backend, dynamic=False)
            count += 1
    return count


def channels_last_encode(projector: torch.nn.Module) -> None:
    """Convolution weights and encode input in channels-last format."""
    projector.to(memory_format=torch.channels_last)
    encode = projector.encode

    def encode_channels_last(x: torch.Tensor) -> torch.Tensor:
        return encode(x.contiguous(memory_format=torch.channels_last))

    projector.encode = encode_channels_last


def make_optim_wrappers(model: torch.nn.Module, dtypes: Sequence[str],
                        fused: bool) -> Dict[str, OptimWrapper]:
    """One AdamW per model; per dtype a wrapper around it (bf16: autocast
    around forward, no loss scaling)."""
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs = dict(fused=True) if fused else {}
    optimizer = torch.optim.AdamW(params, lr=1.5e-4, weight_decay=0.05,
                                  **kwargs)
    return {
        dtype: (OptimWrapper(optimizer) if dtype == 'fp32' else
                AutocastOptimWrapper(dtype=DTYPES[dtype],
                                     optimizer=optimizer))
        for dtype in dtypes
    }


# -------------------------------------------------------------------- data
def photo_batch(batch_size: int, img_size: int) -> torch.Tensor:
    """``(B, 3, H, W)`` uint8 crops of the embedded photos."""
    photos = EmbeddedPhotos(split='train', crop_size=img_size,
                            num_crops=batch_size,
                            pipeline=[dict(type='mmpretrain.PackInputs')])
    return torch.stack([photos[i]['inputs'] for i in range(batch_size)])


def cached_latent_batch(projector_cfg: dict, img_size: int, batch_size: int,
                        num_images: int, cache_dir: str) -> dict:
    """Write ``num_images`` crops' latents with ``write_latent_cache``, then
    collate a batch of ``batch_size`` rows of the ``LatentCacheDataset``
    (rows repeat when the batch is larger)."""
    dataset_cfg = dict(type='EmbeddedPhotos', split='train',
                       crop_size=img_size, num_crops=num_images,
                       pipeline=[dict(type='mmpretrain.PackInputs')])
    # Timing only: the projector's weights do not change the step time.
    write_latent_cache(projector_cfg, dataset_cfg, cache_dir, num_views=1,
                       dtype='fp16', batch_size=min(num_images, 8),
                       allow_random_projector=True)
    cache = LatentCacheDataset(cache_dir)
    return default_collate([cache[i % len(cache)] for i in range(batch_size)])


# --------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> dict:
    """Build, count, time; returns the results (also printed)."""
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules()
    # mmengine logs every parameter's initialisation at INFO: keep it quiet.
    MMLogger.get_current_instance().setLevel('WARNING')
    torch.manual_seed(0)
    fused_attn = not args.no_fused_attn
    say = print if args.size == 'base' else (lambda *a, **k: None)

    images = photo_batch(args.batch_size, args.img_size)
    image_data = dict(inputs=images.to(device), data_samples=None)
    say(f'building MAE and LMD p{args.patch} ...', flush=True)
    mae = build_mae(args.size, args.img_size, fused_attn).to(device).train()
    lmd_cfgs = {p: lmd_config(p, args.size, args.img_size, fused_attn)
                for p in args.patch}
    lmds = {p: build_lmd(cfg).to(device).train()
            for p, cfg in lmd_cfgs.items()}
    if args.channels_last:
        for model in lmds.values():
            channels_last_encode(model.projector)
    mae_optims = make_optim_wrappers(mae, args.dtypes, args.fused_adamw)
    lmd_optims = {p: make_optim_wrappers(m, args.dtypes, args.fused_adamw)
                  for p, m in lmds.items()}

    tmp = tempfile.TemporaryDirectory()
    latent_data = None
    if 'cached' in args.modes:
        projector_cfg = lmd_cfgs[args.patch[0]]['projector']
        latent_data = cached_latent_batch(projector_cfg, args.img_size,
                                          args.batch_size, args.cache_images,
                                          tmp.name)
        latent_data['inputs'] = latent_data['inputs'].to(device)

    grid = {p: (args.img_size // 8 // p)**2 for p in args.patch}
    mae_grid = (args.img_size // MAE_PATCH)**2
    steps: Dict[str, Callable[[], None]] = {}
    meta: Dict[str, dict] = {}
    flop_key: Dict[str, tuple] = {}

    def mae_step(dtype: str) -> Callable[[], None]:
        def step() -> None:
            mae.backbone.mask_ratio = args.mae_ratio
            mae.train_step(image_data, mae_optims[dtype])
        return step

    def lmd_step(p: int, mode: str, dtype: str,
                 ratio: float) -> Callable[[], None]:
        model, wrapper = lmds[p], lmd_optims[p][dtype]
        data = latent_data if mode == 'cached' else image_data

        def step() -> None:
            model.mask_ratio = ratio
            model.train_step(data, wrapper)
        return step

    for dtype in args.dtypes:
        name = f'MAE ViT-B/16 | pixels | {dtype} | {args.mae_ratio:.3f}'
        steps[name] = mae_step(dtype)
        meta[name] = dict(model='MAE', patch=MAE_PATCH, mode='pixels',
                          dtype=dtype, ratio=args.mae_ratio,
                          tokens=mae_grid,
                          visible=num_kept_tokens(mae_grid, args.mae_ratio))
        flop_key[name] = ('MAE', args.mae_ratio)
        for p in args.patch:
            for mode in args.modes:
                for ratio in args.ratio_values:
                    name = f'LMD p{p} | {mode} | {dtype} | {ratio:.3f}'
                    steps[name] = lmd_step(p, mode, dtype, ratio)
                    meta[name] = dict(model='LMD', patch=p, mode=mode,
                                      dtype=dtype, ratio=ratio,
                                      tokens=grid[p],
                                      visible=num_kept_tokens(grid[p], ratio))
                    flop_key[name] = (p, mode, ratio)

    # FLOPs: once per (model, mode, ratio), eager fp32 (autocast does not
    # change shapes); the projector encode's share separately, since it
    # stays fp32 in a bf16 step.
    say('counting FLOPs ...', flush=True)
    flops: Dict[tuple, int] = {}
    for name, key in flop_key.items():
        if key not in flops:
            fp32_name = name.replace(f'| {meta[name]["dtype"]} |', '| fp32 |')
            if fp32_name in steps:
                flops[key] = count_flops(steps[fp32_name])
            else:  # bf16 only: count the bf16 step
                flops[key] = count_flops(steps[name])
    encode_flops = 0
    if 'otf' in args.modes:
        model = lmds[args.patch[0]]
        with torch.no_grad():
            x = model.data_preprocessor(image_data)['inputs']
            encode_flops = count_flops(lambda: model.projector.encode(x))

    compiled = 0
    if args.compile:
        compiled = compile_blocks([mae, *lmds.values()], args.compile_backend)
    matmuls = {
        dtype: MatmulStep(args.matmul_size, DTYPES[dtype], device)
        for dtype in DTYPES
    }
    for matmul in matmuls.values():
        matmul.calibrate(0.2 if device.type == 'cpu' else 0.05)
    for dtype, matmul in matmuls.items():
        steps[f'matmul {args.matmul_size}^3 | {dtype}'] = matmul

    say(f'timing {len(steps)} steps: {args.warmup} warm-up + {args.iters} '
        'timed rounds ...', flush=True)
    timing = round_robin(steps, args.iters, args.warmup, device,
                         log=lambda m: say(m, flush=True))
    tmp.cleanup()

    rate = {
        dtype: matmuls[dtype].flops /
        timing[f'matmul {args.matmul_size}^3 | {dtype}']['median']
        for dtype in DTYPES
    }
    peak = None
    device_name = 'cpu'
    if device.type == 'cuda':
        device_name = torch.cuda.get_device_name(device)
        peak = device_peak_tflops(device_name, args.peak_tflops)
    rows = []
    for name, info in meta.items():
        seconds = timing[name]['median']
        total = flops[flop_key[name]]
        enc = encode_flops if info['mode'] == 'otf' else 0
        limit_seconds = (total - enc) / rate[info['dtype']] + enc / rate[
            'fp32']
        mae_name = (f'MAE ViT-B/16 | pixels | {info["dtype"]} | '
                    f'{args.mae_ratio:.3f}')
        row = dict(info,
                   name=name,
                   seconds=seconds,
                   times=timing[name]['times'],
                   vs_mae=seconds / timing[mae_name]['median'],
                   images_per_s=args.batch_size / seconds,
                   gflop=total / 1e9,
                   encode_gflop=enc / 1e9,
                   gflop_per_s=total / seconds / 1e9,
                   matmul_fraction=limit_seconds / seconds,
                   peak_gib=gib(timing[name]['peak_bytes']),
                   step_peak_gib=gib(timing[name]['step_peak_bytes']),
                   mfu=(None if peak is None else total / seconds /
                        (peak * 1e12)))
        rows.append(row)
    result = dict(
        device=str(device), device_name=device_name,
        torch=torch.__version__, threads=torch.get_num_threads(),
        omp_wait_policy=os.environ.get('OMP_WAIT_POLICY'),
        batch_size=args.batch_size, img_size=args.img_size, size=args.size,
        iters=args.iters, warmup=args.warmup,
        cosine_mean_ratio=cosine_mean_ratio(args),
        schedule_iters=args.schedule_iters,
        compile=args.compile and args.compile_backend,
        compiled_blocks=compiled, fused_adamw=args.fused_adamw,
        channels_last=args.channels_last, fused_attn=fused_attn,
        matmul_size=args.matmul_size,
        matmul_gflop_per_s={d: r / 1e9 for d, r in rate.items()},
        peak_bf16_tflops=peak, rows=rows)
    print_result(result)
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(result, f, indent=1)
    return result


def gib(num_bytes: Optional[int]) -> Optional[float]:
    return None if num_bytes is None else num_bytes / 2**30


def print_result(result: dict) -> None:
    rows, cuda = result['rows'], result['device'].startswith('cuda')
    print(f"\nLMD ViT-B 12+8 (kl-f8 latent, random projector) vs mmpretrain "
          f"MAE ViT-B/16 12+8 [{result['size']}]; {result['device_name']}, "
          f"torch {result['torch']}, threads {result['threads']}, "
          f"OMP_WAIT_POLICY={result['omp_wait_policy']}; batch "
          f"{result['batch_size']}, {result['img_size']} px, median of "
          f"{result['iters']} after {result['warmup']} warm-up round(s); "
          f"cosine-mean ratio {result['cosine_mean_ratio']:.4f} (T = "
          f"{result['schedule_iters']}); compile={result['compile']}, "
          f"fused AdamW={result['fused_adamw']}, channels-last encode="
          f"{result['channels_last']}, fused attention="
          f"{result['fused_attn']}")
    rates = ', '.join(f'{d} {r:.1f}' for d, r in
                      result['matmul_gflop_per_s'].items())
    print(f"matmul {result['matmul_size']}^3 (the limit): {rates} GFLOP/s")
    head = ('| model | input | dtype | mask ratio | visible / tokens | '
            's / iter | x MAE | GFLOP / step | GFLOP/s | of matmul')
    rule = '|---|---|---|---|---|---|---|---|---|---'
    if cuda:
        head += ' | images/s | peak GiB | step GiB | MFU'
        rule += '|---|---|---|---'
    print(head + ' |\n' + rule + '|')
    for r in rows:
        model = 'MAE ViT-B/16' if r['model'] == 'MAE' else \
            f"LMD p{r['patch']}"
        line = (f"| {model} | {r['mode']} | {r['dtype']} | {r['ratio']:.3f}"
                f" | {r['visible']} / {r['tokens']} | {r['seconds']:.4f} | "
                f"{r['vs_mae']:.2f} | {r['gflop']:.4g} | "
                f"{r['gflop_per_s']:.1f} | {r['matmul_fraction']:.2f}")
        if cuda:
            mfu = '-' if r['mfu'] is None else f"{r['mfu']:.3f}"
            line += (f" | {r['images_per_s']:.0f} | {r['peak_gib']:.2f} | "
                     f"{r['step_peak_gib']:.2f} | {mfu}")
        print(line + ' |')
    if cuda and result['peak_bf16_tflops'] is None:
        print(f"MFU: unknown bf16 peak for {result['device_name']!r}; pass "
              '--peak-tflops')
    by_key = {(r['model'], r['patch'], r['mode'], r['dtype'], r['ratio']): r
              for r in rows}
    lines = []
    for (model, p, mode, dtype, ratio), r in by_key.items():
        if mode == 'otf' and (model, p, 'cached', dtype, ratio) in by_key:
            c = by_key[(model, p, 'cached', dtype, ratio)]
            lines.append(f'on the fly / cached, LMD p{p} {dtype} at '
                         f"{ratio:.3f}: {r['seconds'] / c['seconds']:.2f}x")
    for (model, p, mode, dtype, ratio), r in by_key.items():
        if dtype == 'bf16' and (model, p, mode, 'fp32', ratio) in by_key:
            f = by_key[(model, p, mode, 'fp32', ratio)]
            label = 'MAE' if model == 'MAE' else f'LMD p{p} {mode}'
            lines.append(f'fp32 / bf16 (bf16 speed-up), {label} at '
                         f"{ratio:.3f}: {f['seconds'] / r['seconds']:.2f}x")
    print('\n'.join(lines))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    return run(parse_args(argv))


if __name__ == '__main__':
    main()
