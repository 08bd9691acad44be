"""Memory per rank under DDP and under FSDP, measured on N local processes.

Each strategy runs in its own N processes (gloo without CUDA, nccl with),
one after the other. Every rank builds the LMD model of ``--arch`` (the
ViT-B config's decoder, the encoder of the arch; a random tiny-f8 projector
stands in for kl-f8 and never encodes: the batches are fake cached
latents), wraps it with the toolkit's DDP wrapper or
``LMDFullyShardedDataParallel`` (one FSDP unit per block, projector
ignored), and takes ``--steps`` AdamW steps with ``with_cp`` on or off.

Per rank it reports:
  states: the bytes of the parameters, gradients and optimizer states this
      rank holds, counted from the tensors (exact);
  RSS: the process's resident memory after the steps (``malloc_trim``
      first, so freed heap is returned), less the RSS before the model
      was built; this includes activations freed after backward only in so
      far as the allocator keeps them, and one gathered FSDP unit.
The FSDP / DDP ratios of both are printed, with the formula of
docs/en/distributed.md (16 B x P / N + 16 B x P_frozen) for comparison.

Threads: ``torch.set_num_threads(--threads)`` per process (default 1: N
processes share the machine); run with ``OMP_WAIT_POLICY=PASSIVE``.
Example (the run recorded in docs/en/distributed.md):
  OMP_WAIT_POLICY=PASSIVE python tools/analysis_tools/benchmark_fsdp_memory.py \\
      --arch large --nproc 2 --batch-size 2 --with-cp \\
      --out work_dirs/fsdp_memory_vit-l.json
"""
import argparse
import ctypes
import json
import os
import os.path as osp
import sys
import tempfile
from typing import Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from benchmark_activation_checkpointing import (  # noqa: E402
    fake_latent_batch, model_config, resolve_arch)
from lmd_toolkit.utils.compat import free_local_port  # noqa: E402

GB = 1e9


def rss_bytes() -> int:
    """Resident memory of this process now (after returning freed heap)."""
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except OSError:
        pass
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors
               if torch.is_tensor(t))


def held_state_bytes(model: torch.nn.Module,
                     optimizer: torch.optim.Optimizer, grads: int) -> dict:
    """Bytes of parameters (trainable / frozen), gradients (``grads``, as
    seen by the optimizer step) and optimizer states held by this rank."""
    params = list(model.parameters())
    return dict(
        trainable=tensor_bytes(p for p in params if p.requires_grad),
        frozen=tensor_bytes(p for p in params if not p.requires_grad),
        grads=grads,
        optimizer=tensor_bytes(v for state in optimizer.state.values()
                               for v in state.values()))


def worker(rank: int, args: argparse.Namespace, strategy: str, port: int,
           out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(args.nproc), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port))
    torch.set_num_threads(args.threads)
    import torch.distributed as dist
    from mmengine.optim import OptimWrapper

    from lmd_toolkit.engine.model_wrappers import LMDDistributedDataParallel
    from lmd_toolkit.engine.strategies import LMDFullyShardedDataParallel
    from lmd_toolkit.registry import MODELS
    from lmd_toolkit.utils import register_all_modules
    register_all_modules()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group('nccl' if cuda else 'gloo')
    device = torch.device('cuda', rank) if cuda else torch.device('cpu')
    before = rss_bytes()
    torch.manual_seed(0)
    arch = resolve_arch(args.arch)
    model = MODELS.build(model_config(arch))
    model.backbone.with_cp = model.neck.with_cp = args.with_cp
    inner = model
    if strategy == 'fsdp':
        model = LMDFullyShardedDataParallel(model.to(device), device_id=rank)
    else:
        model = LMDDistributedDataParallel(model.to(device),
                                           device_ids=[rank] if cuda else None)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4)
    wrapper = OptimWrapper(optimizer)
    grads = []  # the gradients exist until zero_grad, after the step
    optimizer.register_step_pre_hook(lambda opt, *_: grads.append(
        tensor_bytes(p.grad for g in opt.param_groups for p in g['params']
                     if p.grad is not None)))
    for _ in range(args.steps):
        batch = fake_latent_batch(inner, args.batch_size, device)
        model.train_step(batch, wrapper)
    held = held_state_bytes(model, optimizer, max(grads))
    result = dict(rank=rank, strategy=strategy, rss=rss_bytes() - before,
                  **held)
    if cuda:
        result['cuda_peak'] = torch.cuda.max_memory_allocated()
    with open(osp.join(out, f'{strategy}_rank{rank}.json'), 'w') as f:
        json.dump(result, f)
    dist.destroy_process_group()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', default='large',
                        help="'base', 'large', 'huge' or a JSON dict")
    parser.add_argument('--nproc', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=2,
                        help='per rank')
    parser.add_argument('--steps', type=int, default=2)
    parser.add_argument('--with-cp', action='store_true')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--strategies', nargs='+', default=['ddp', 'fsdp'],
                        choices=['ddp', 'fsdp'])
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in args.strategies:
            print(f'{strategy}: {args.nproc} processes ...', flush=True)
            mp.spawn(worker, args=(args, strategy, free_local_port(), tmp),
                     nprocs=args.nproc, join=True)
            results[strategy] = [
                json.load(open(osp.join(tmp, f'{strategy}_rank{r}.json')))
                for r in range(args.nproc)
            ]
    print(f'arch={args.arch} nproc={args.nproc} batch/rank='
          f'{args.batch_size} with_cp={args.with_cp} threads='
          f'{args.threads} (GB = 1e9 bytes)')
    print(f'{"strategy":8} {"rank":>4} {"trainable":>10} {"grads":>8} '
          f'{"optimizer":>10} {"frozen":>8} {"states":>8} {"RSS":>8}')
    for strategy, ranks in results.items():
        for r in ranks:
            r['states'] = r['trainable'] + r['grads'] + r['optimizer']
            print(f'{strategy:8} {r["rank"]:>4} {r["trainable"] / GB:10.3f} '
                  f'{r["grads"] / GB:8.3f} {r["optimizer"] / GB:10.3f} '
                  f'{r["frozen"] / GB:8.3f} {r["states"] / GB:8.3f} '
                  f'{r["rss"] / GB:8.3f}')
    if {'ddp', 'fsdp'} <= set(results):
        for key in ('states', 'rss'):
            ddp = max(r[key] for r in results['ddp'])
            fsdp = max(r[key] for r in results['fsdp'])
            print(f'FSDP / DDP {key} per rank (max over ranks): '
                  f'{fsdp / ddp:.3f}')
        params = results['ddp'][0]['trainable'] / 4
        print(f'formula 16 B x P / N = {16 * params / args.nproc / GB:.3f} '
              f'GB (P = {params:,.0f} trainable)')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), results=results), f, indent=1)
    return results


if __name__ == '__main__':
    main()
