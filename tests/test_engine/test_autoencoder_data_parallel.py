"""AutoencoderDataParallel + AutoencoderTrainer in two real gloo processes:
every rank ends with the same weights, and with the GAN off these equal one
process training on the union of the two ranks' batches."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper

from lmd_toolkit.engine import AutoencoderDataParallel
from lmd_toolkit.registry import MODELS
from lmd_toolkit.utils import register_all_modules

STEPS = 3


def build(disc_start):
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='AutoencoderTrainer',
             projector=dict(type='KLVAEProjector', preset='micro-f4'),
             discriminator=dict(type='NLayerDiscriminator', ndf=8,
                                n_layers=2),
             perceptual_weight=0.0,
             sample_posterior=False,  # no per-rank randomness
             disc_start=disc_start))
    # SGD: the update is linear in the gradient, so equal up to rounding
    # (Adam's step amplifies rounding where a gradient is near zero).
    sgd = dict(type='SGD', lr=0.1)
    optim = build_optim_wrapper(
        model,
        dict(constructor='AutoencoderOptimWrapperConstructor',
             generator=dict(type='OptimWrapper', optimizer=sgd),
             discriminator=dict(type='OptimWrapper', optimizer=sgd)))
    return model, optim


def images(step, rank):
    gen = torch.Generator().manual_seed(100 * step + rank)
    return torch.randint(0, 256, (2, 3, 16, 16), generator=gen,
                         dtype=torch.uint8)


def flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def worker(rank, port, disc_start, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=2)
    model, optim = build(disc_start)
    if rank == 1:  # a different start: the wrapper broadcasts rank 0's
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
    wrapped = AutoencoderDataParallel(model)
    hub = MessageHub.get_current_instance()
    for step in range(STEPS):
        hub.update_info('iter', step)
        wrapped.train_step(dict(inputs=images(step, rank)), optim)
    weights = flat(model)
    gathered = [torch.zeros_like(weights) for _ in range(2)]
    dist.all_gather(gathered, weights)
    if rank == 0:
        torch.save(torch.stack(gathered), out)
    dist.barrier()
    dist.destroy_process_group()


def run_two(disc_start, tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    out = str(tmp_path / f'weights_{disc_start}.pt')
    mp.spawn(worker, args=(port, disc_start, out), nprocs=2, join=True)
    return torch.load(out, weights_only=True)


def test_gradients_are_averaged_over_processes(tmp_path):
    ranks = run_two(disc_start=10**6, tmp_path=tmp_path)
    torch.testing.assert_close(ranks[0], ranks[1], rtol=0, atol=0)
    # one process, both ranks' images in one batch: the same update
    model, optim = build(10**6)
    hub = MessageHub.get_current_instance()
    for step in range(STEPS):
        hub.update_info('iter', step)
        both = torch.cat([images(step, 0), images(step, 1)])
        model.train_step(dict(inputs=both), optim)
    torch.testing.assert_close(ranks[0], flat(model), rtol=1e-4, atol=1e-6)


def test_ranks_stay_equal_with_the_gan_on(tmp_path):
    ranks = run_two(disc_start=0, tmp_path=tmp_path)
    torch.testing.assert_close(ranks[0], ranks[1], rtol=0, atol=0)
