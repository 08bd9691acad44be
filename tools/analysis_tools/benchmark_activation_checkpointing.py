"""Time one LMD training step with and without activation checkpointing
(``with_cp`` of LMDViT and LMDDecoder) and measure the activations each
keeps for backward.

A step is ``model.train_step`` on a fake cached-latent batch (random
``(B, 4, 28, 28)`` latents whose data samples say ``input_type='latent'``,
so the projector never encodes: a random tiny-f8 stands in for kl-f8):
forward, backward, AdamW step. The model is the ViT-B base config
(configs/_base_/models/lmd_vit-b_p2.py) with the encoder of ``--arch``
(base / large / huge, as the ViT-L / ViT-H configs set it, or a dict) and
the decoder input width to match; one model, whose ``with_cp`` flags are switched between
the two variants, timed alternately in one process (``round_robin`` of
step_timing.py: warm-up rounds untimed, medians reported).

Memory:
  saved activations (every device): the bytes of the distinct storages
      autograd saves for backward during one forward and still holds at
      its end (``torch.autograd.graph.saved_tensors_hooks``; parameters and
      buffers excluded). With ``with_cp`` these are the block inputs (and
      what lies outside the blocks); one block's own activations come back
      for a moment while it is recomputed in backward.
  CUDA peak: ``torch.cuda.max_memory_allocated`` during the step less what
      was allocated when it began (activations and temporaries).

``--depth D`` builds the encoder with D blocks (instead of the arch's) at
full width, measures at D and D // 2 and extrapolates each value linearly
to the arch depth: ``v(n) = a + b n`` through the two points (all blocks
of the encoder have one shape, so saved bytes are exactly linear; times
nearly).

Threads: ``torch.set_num_threads(--threads)``; run with
``OMP_WAIT_POLICY=PASSIVE`` on a shared machine (idle OpenMP threads then
sleep instead of spinning). Example (the recorded runs in
docs/en/distributed.md):
  OMP_WAIT_POLICY=PASSIVE python \\
      tools/analysis_tools/benchmark_activation_checkpointing.py \\
      --arch large --batch-size 2 8 --threads 2 \\
      --out work_dirs/cp_vit-l.json
"""
import argparse
import json
import os
import os.path as osp
import sys
import weakref
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402

from benchmark_lmd_vs_mae import build_lmd, make_optim_wrappers  # noqa: E402
from lmd_toolkit.models import LMDViT  # noqa: E402
from lmd_toolkit.utils import register_all_modules  # noqa: E402
from lmd_toolkit.utils.fileio import atomic_write  # noqa: E402
from step_timing import round_robin  # noqa: E402

# The rest of the model (decoder, head, latent); the arch and the widths
# are set from --arch below (the ViT-L / ViT-H configs change only those).
MODEL_CONFIGS = dict(base='lmd_vit-b_p2.py', large='lmd_vit-b_p2.py',
                     huge='lmd_vit-b_p2.py')
VARIANTS = ('no-cp', 'cp')
MB = 2**20


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', default='large',
                        help="'base', 'large', 'huge' or a JSON dict of "
                        'embed_dims, num_layers, num_heads')
    parser.add_argument('--batch-size', type=int, nargs='+', default=[2])
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed rounds (each variant once per round)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--depth', type=int, default=None,
                        help='encoder blocks built (default: the arch '
                        "depth); measured at D and D // 2, extrapolated")
    parser.add_argument('--mask-ratio', type=float, default=0.75)
    parser.add_argument('--dtype', default='fp32', choices=['fp32', 'bf16'],
                        help='bf16: autocast around forward')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None,
                        help="torch.set_num_threads (default: torch's "
                        'current number, set again explicitly)')
    parser.add_argument('--memory-only', action='store_true',
                        help='saved activations only: no optimizer, no '
                        'timing (a full-depth ViT-H fits in a few GB)')
    parser.add_argument('--out', default=None,
                        help='results JSON; a bar chart goes next to it '
                        '(same name, .png)')
    args = parser.parse_args(argv)
    try:
        args.arch_dict = resolve_arch(args.arch)
    except (KeyError, ValueError) as err:
        parser.error(f'--arch: {err}')
    full = args.arch_dict['num_layers']
    if args.depth is not None and not 2 <= args.depth <= full:
        parser.error(f'--depth must be in [2, {full}] (the arch depth), got '
                     f'{args.depth}')
    if min(args.batch_size) < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error('--batch-size and --repeats must be >= 1, --warmup >= 0')
    if not 0.0 <= args.mask_ratio < 1.0:
        parser.error(f'--mask-ratio must be in [0, 1), got {args.mask_ratio}')
    return args


def resolve_arch(arch: str) -> dict:
    """``'large'`` -> ``LMDViT.arch_zoo['large']`` plus ``name``; a JSON
    dict -> that dict (``name='custom'``)."""
    if arch in LMDViT.arch_zoo:
        return dict(LMDViT.arch_zoo[arch], name=arch)
    try:
        value = json.loads(arch)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ValueError(f'{arch!r} is neither one of '
                         f'{sorted(LMDViT.arch_zoo)} nor a JSON dict')
    missing = {'embed_dims', 'num_layers', 'num_heads'} - set(value)
    if missing:
        raise ValueError(f'{arch!r} lacks keys {sorted(missing)}')
    return dict(value, name='custom')


def model_config(arch: dict, depth: Optional[int] = None) -> dict:
    """The arch's base model config, ``depth`` encoder blocks, a random
    tiny-f8 projector (cached latents: it never encodes)."""
    name = MODEL_CONFIGS.get(arch['name'], MODEL_CONFIGS['base'])
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models',
                                   name)).model.to_dict()
    cfg['projector'].update(preset='tiny-f8', checkpoint=None)
    cfg['backbone'].update(
        arch={k: arch[k] for k in ('embed_dims', 'num_layers', 'num_heads')},
        num_layers=depth)
    cfg['neck'].update(embed_dims=arch['embed_dims'])
    return cfg


def fake_latent_batch(model: torch.nn.Module, batch_size: int,
                      device: torch.device) -> dict:
    """Random latents ``(B, d, h, w)`` marked as a cache of the model's
    projector, so ``train_step`` skips the encode."""
    d = model.projector.latent_channels
    z = torch.randn(batch_size, d, *model.backbone.latent_size, device=device)
    source = model.projector.fingerprint()
    samples = [dict(input_type='latent', latent_source=source)
               for _ in range(batch_size)]
    return dict(inputs=z, data_samples=samples)


def set_checkpointing(model: torch.nn.Module, with_cp: bool) -> None:
    """Switch ``with_cp`` of the encoder and the decoder."""
    model.backbone.with_cp = with_cp
    model.neck.with_cp = with_cp


def saved_tensor_bytes(forward: Callable[[], object],
                       exclude: Iterable[torch.Tensor] = ()
                       ) -> Tuple[object, int]:
    """Run ``forward`` and count what autograd keeps for backward.

    Args:
        forward (callable): Builds the graph (e.g. returns the loss).
        exclude (iterable of Tensor): Not counted (parameters, buffers).

    Returns:
        tuple: ``forward()``'s result, and the bytes of the distinct
        storages saved for backward during it that are still alive when it
        returns (a storage saved by several ops counts once).
    """
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    saved: Dict[int, Tuple[int, List[weakref.ref]]] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        # The graph holds a detached alias (same storage): it dies with the
        # graph, where the tensor itself (an op's saved output) would form
        # a cycle with its grad_fn and outlive it.
        held = tensor.detach()
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in excluded:
            entry = saved.setdefault(ptr, (storage.nbytes(), []))
            entry[1].append(weakref.ref(held))
        return held

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    alive = sum(nbytes for nbytes, refs in saved.values()
                if any(ref() is not None for ref in refs))
    return out, alive


def linear_fit(x1: float, y1: float, x2: float,
               y2: float) -> Tuple[float, float]:
    """``(a, b)`` of the line ``y = a + b x`` through two points."""
    if x1 == x2:
        raise ValueError('linear_fit: two distinct x are needed')
    b = (y2 - y1) / (x2 - x1)
    return y1 - b * x1, b


def measure(cfg: dict, batch_sizes: Sequence[int], args: argparse.Namespace,
            device: torch.device) -> Dict[int, Dict[str, dict]]:
    """Build ``cfg`` once; per batch size and variant the step times (s),
    median, saved-activation bytes and (CUDA) step peak bytes."""
    torch.manual_seed(0)
    model = build_lmd(cfg).to(device).train()
    model.mask_ratio = args.mask_ratio
    if args.memory_only:
        wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    else:
        wrapper = make_optim_wrappers(model, [args.dtype],
                                      fused=False)[args.dtype]
    state = [*model.parameters(), *model.buffers()]
    out = {}
    for batch_size in batch_sizes:
        data = fake_latent_batch(model, batch_size, device)

        def step(with_cp: bool) -> Callable[[], None]:
            def run_step() -> None:
                set_checkpointing(model, with_cp)
                model.train_step(data, wrapper)
            return run_step

        def loss() -> torch.Tensor:
            batch = model.data_preprocessor(data, True)
            with wrapper.optim_context(model):
                return model.loss(**batch)['loss']

        no_timing = dict(times=[], median=None, step_peak_bytes=None)
        timing = {v: no_timing for v in VARIANTS} if args.memory_only else \
            round_robin({v: step(v == 'cp') for v in VARIANTS},
                        args.repeats, args.warmup, device)
        result = {}
        for variant in VARIANTS:
            set_checkpointing(model, variant == 'cp')
            value, saved = saved_tensor_bytes(loss, exclude=state)
            del value  # the graph (and what it saved) goes
            result[variant] = dict(times=timing[variant]['times'],
                                   median=timing[variant]['median'],
                                   saved_bytes=saved,
                                   step_peak_bytes=timing[variant]
                                   ['step_peak_bytes'])
        out[batch_size] = result
        print(f'  batch {batch_size}: ' + ', '.join(
            f"{v} {fmt(r['median'], '.3f')} s, {r['saved_bytes'] / MB:.1f} MB"
            for v, r in result.items()), flush=True)
    del model, wrapper
    return out


def run(args: argparse.Namespace) -> dict:
    """Measure (and extrapolate); returns the results (also printed)."""
    device = torch.device(args.device)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    register_all_modules()
    MMLogger.get_current_instance().setLevel('WARNING')
    arch = args.arch_dict
    full = arch['num_layers']
    depths = [full] if args.depth is None else sorted(
        {max(1, args.depth // 2), args.depth})
    measured = {}
    for depth in depths:
        print(f"measuring {arch['name']} ({arch['embed_dims']} wide) with "
              f'{depth} encoder blocks ...', flush=True)
        measured[depth] = measure(model_config(arch, depth), args.batch_size,
                                  args, device)
    rows = []
    for batch_size in args.batch_size:
        for variant in VARIANTS:
            row = dict(batch_size=batch_size, variant=variant,
                       encoder_depth=full, extrapolated=len(depths) > 1)
            for key in ('median', 'saved_bytes', 'step_peak_bytes'):
                values = [measured[d][batch_size][variant][key]
                          for d in depths]
                if len(depths) == 1 or values[0] is None:
                    row[key] = values[0]
                    continue
                a, b = linear_fit(depths[0], values[0], depths[1], values[1])
                row[key] = a + b * full
                row[f'{key}_fit'] = dict(a=a, b_per_block=b,
                                         depths=depths, measured=values)
            rows.append(row)
    for row in rows:
        plain = next(r for r in rows if r['batch_size'] == row['batch_size']
                     and r['variant'] == 'no-cp')
        row['time_ratio'] = None if row['median'] is None else \
            row['median'] / plain['median']
        row['saved_ratio'] = row['saved_bytes'] / plain['saved_bytes']
    result = dict(
        arch=arch, depths_measured=depths, device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else 'cpu'),
        torch=torch.__version__, threads=torch.get_num_threads(),
        omp_wait_policy=os.environ.get('OMP_WAIT_POLICY'),
        dtype=args.dtype, mask_ratio=args.mask_ratio, repeats=args.repeats,
        warmup=args.warmup,
        memory_method='saved_tensors_hooks: distinct storages saved for '
        'backward, alive at the end of forward (parameters and buffers '
        'excluded)' + ('; CUDA: max_memory_allocated during the step less '
                       'the allocation at its start'
                       if device.type == 'cuda' else ''),
        measured={str(d): {str(b): v for b, v in m.items()}
                  for d, m in measured.items()},
        rows=rows)
    print_result(result)
    if args.out:
        with atomic_write(args.out) as f:
            json.dump(result, f, indent=1)
        if not args.memory_only:
            plot(result, osp.splitext(args.out)[0] + '.png')
    return result


def fmt(value: Optional[float], spec: str) -> str:
    return '-' if value is None else format(value, spec)


def print_result(result: dict) -> None:
    arch, rows = result['arch'], result['rows']
    cuda = result['device'].startswith('cuda')
    print(f"\nLMD {arch['name']} ({arch['embed_dims']} wide, "
          f"{arch['num_layers']} encoder blocks, 8 x 512 decoder), kl-f8 "
          f"latent 28 x 28 x 4, patch 2, mask ratio {result['mask_ratio']}; "
          f"{result['device_name']}, torch {result['torch']}, threads "
          f"{result['threads']}, OMP_WAIT_POLICY="
          f"{result['omp_wait_policy']}, {result['dtype']}; median of "
          f"{result['repeats']} after {result['warmup']} warm-up round(s)")
    print(f"memory: {result['memory_method']}")
    if len(result['depths_measured']) > 1:
        print(f"measured with {result['depths_measured']} encoder blocks, "
              f"extrapolated to {arch['num_layers']}: v(n) = a + b n")
        for row in rows:
            for key, unit, scale in (('median', 's', 1),
                                     ('saved_bytes', 'MB', MB)):
                fit = row.get(f'{key}_fit')
                if fit is None:  # not measured (--memory-only)
                    continue
                shown = ', '.join(f'{m / scale:.4g}' for m in fit['measured'])
                print(f"  batch {row['batch_size']} {row['variant']} {key}: "
                      f"[{shown}] {unit} -> {fit['a'] / scale:.4g} + "
                      f"{fit['b_per_block'] / scale:.4g} x "
                      f"{arch['num_layers']} = {row[key] / scale:.4g} {unit}")
    head = ('| batch | variant | step s (median) | saved activations MB | '
            'time cp / no-cp | memory cp / no-cp')
    rule = '|---|---|---|---|---|---'
    if cuda:
        head += ' | CUDA step peak MB'
        rule += '|---'
    print(head + ' |\n' + rule + '|')
    for r in rows:
        line = (f"| {r['batch_size']} | {r['variant']} | "
                f"{fmt(r['median'], '.3f')} | {r['saved_bytes'] / MB:.1f} | "
                f"{fmt(r['time_ratio'], '.2f')} | {r['saved_ratio']:.3f}")
        if cuda:
            line += f" | {r['step_peak_bytes'] / MB:.0f}"
        print(line + ' |')


def plot(result: dict, out: str) -> None:
    """Two bar charts: step time and saved activations per batch size."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows, arch = result['rows'], result['arch']
    batches = sorted({r['batch_size'] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    width = 0.38
    for i, variant in enumerate(VARIANTS):
        by_batch = {r['batch_size']: r for r in rows
                    if r['variant'] == variant}
        xs = [j + (i - 0.5) * width for j in range(len(batches))]
        axes[0].bar(xs, [by_batch[b]['median'] for b in batches], width,
                    label=variant)
        axes[1].bar(xs, [by_batch[b]['saved_bytes'] / MB for b in batches],
                    width, label=variant)
    suffix = ' (extrapolated)' if rows[0]['extrapolated'] else ''
    for ax, label in zip(axes, ('step time (s)', 'saved activations (MB)')):
        ax.set_xticks(range(len(batches)), [f'batch {b}' for b in batches])
        ax.set_ylabel(label + suffix)
        ax.legend()
    fig.suptitle(f"LMD {arch['name']} ({arch['embed_dims']} x "
                 f"{arch['num_layers']}): with_cp, {result['device_name']}, "
                 f"{result['threads']} threads")
    fig.tight_layout()
    with atomic_write(out, 'wb') as f:
        fig.savefig(f, format='png')
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    return run(parse_args(argv))


if __name__ == '__main__':
    main()
