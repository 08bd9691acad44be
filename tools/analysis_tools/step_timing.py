"""Measuring helpers of ``benchmark_lmd_vs_mae.py``: FLOPs of one step,
the matmul rate a device reaches in practice, round-robin timing, the
cosine schedule's mean ratio and the bf16 peak of known GPUs.

Nothing here builds a model; the functions take callables, so tests can
check them on tiny steps.
"""
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch.utils.flop_counter import (FlopCounterMode,
                                      sdpa_backward_flop_count,
                                      sdpa_flop_count)

from lmd_toolkit.engine.mask_schedulers import BaseMaskRatio

aten = torch.ops.aten

# Dense bf16 tensor-core peak (TFLOP/s, no sparsity) by a substring of
# torch.cuda.get_device_name(); the first match wins, so the more specific
# names come first. From the vendors' data sheets (SXM parts unless named).
DEVICE_PEAK_BF16_TFLOPS = (
    ('GH200', 989.0),
    ('H200', 989.0),
    ('H100 PCIe', 756.0),
    ('H100', 989.0),
    ('H800', 989.0),
    ('B200', 2250.0),
    ('A100', 312.0),
    ('A800', 312.0),
    ('L40S', 362.0),
    ('L4', 121.0),
    ('A10', 125.0),
)


def device_peak_tflops(device_name: str,
                       override: Optional[float] = None) -> Optional[float]:
    """Dense bf16 peak of a GPU in TFLOP/s: ``override`` when given, else
    the first entry of :data:`DEVICE_PEAK_BF16_TFLOPS` whose name occurs in
    ``device_name``, else None (unknown device: pass ``--peak-tflops``)."""
    if override is not None:
        if not override > 0:
            raise ValueError(f'peak TFLOP/s must be positive, got '
                             f'{override!r}')
        return float(override)
    for key, peak in DEVICE_PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return peak
    return None


def _sdpa_cpu_flops(query_shape, key_shape, value_shape, *args,
                    out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_cpu_backward_flops(grad_out_shape, query_shape, key_shape,
                             value_shape, *args, out_shape=None,
                             **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape,
                                    value_shape)


# torch's FlopCounterMode knows the CUDA attention kernels but not the CPU
# flash kernel that F.scaled_dot_product_attention runs here: count it with
# the same formulas (4 * B * heads * Nq * Nk * head_dim forward, twice that
# backward).
CPU_SDPA_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops,
    aten._scaled_dot_product_flash_attention_for_cpu_backward:
    _sdpa_cpu_backward_flops,
}


def count_flops(step: Callable[[], object]) -> int:
    """FLOPs of one call of ``step`` (matmuls, convolutions, attention;
    forward and backward), counted by ``torch.utils.flop_counter``. An
    optimizer step or an element-wise op counts 0."""
    with FlopCounterMode(display=False, custom_mapping=CPU_SDPA_FLOPS) as mode:
        step()
    return int(mode.get_total_flops())


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (no-op on CPU), so a timer sees them."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


class MatmulStep:
    """``reps`` products of two ``(n, n)`` matrices: the rate a device
    reaches on a large, well-shaped matmul, its practical limit.

    Args:
        n (int): Matrix size. Defaults to 2048.
        dtype (torch.dtype): Defaults to float32.
        device (str | torch.device): Defaults to 'cpu'.
        reps (int): Products per call. Defaults to 1.
    """

    def __init__(self,
                 n: int = 2048,
                 dtype: torch.dtype = torch.float32,
                 device='cpu',
                 reps: int = 1) -> None:
        gen = torch.Generator().manual_seed(0)
        self.a = torch.randn(n, n, generator=gen).to(device, dtype)
        self.b = torch.randn(n, n, generator=gen).to(device, dtype)
        self.out = torch.empty_like(self.a)
        self.n, self.reps, self.device = n, reps, torch.device(device)

    @property
    def flops(self) -> int:
        """FLOPs of one call: ``2 n^3`` per product."""
        return 2 * self.n**3 * self.reps

    def __call__(self) -> None:
        for _ in range(self.reps):
            torch.mm(self.a, self.b, out=self.out)

    def calibrate(self, min_seconds: float) -> 'MatmulStep':
        """Set ``reps`` so that one call lasts about ``min_seconds``."""
        self.reps = 1
        self()  # first call: library set-up, weight packing
        synchronize(self.device)
        start = time.perf_counter()
        self()
        synchronize(self.device)
        seconds = max(time.perf_counter() - start, 1e-6)
        self.reps = max(1, int(round(min_seconds / seconds)))
        return self


def round_robin(steps: Dict[str, Callable[[], object]],
                iters: int,
                warmup: int,
                device='cpu',
                log: Optional[Callable[[str], None]] = None
                ) -> Dict[str, dict]:
    """Time every step ``iters`` times, alternating them (a, b, c, a, b, c,
    ...) so that all see the same load on a shared machine; ``warmup``
    untimed rounds first.

    Returns:
        dict: per step name, ``times`` (seconds of each timed call),
        ``median`` (s) and, on CUDA, ``peak_bytes``
        (``torch.cuda.max_memory_allocated`` over its calls) and
        ``step_peak_bytes`` (that peak less what was allocated when the call
        began: the step's own activations and temporaries); None on CPU.
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f'iters must be >= 1 and warmup >= 0, got '
                         f'iters={iters}, warmup={warmup}')
    device = torch.device(device)
    cuda = device.type == 'cuda'
    out = {
        name: dict(times=[], peak_bytes=0, step_peak_bytes=0)
        for name in steps
    }
    for it in range(warmup + iters):
        for name, step in steps.items():
            synchronize(device)
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
                resident = torch.cuda.memory_allocated(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            seconds = time.perf_counter() - start
            if cuda:
                peak = torch.cuda.max_memory_allocated(device)
                record = out[name]
                record['peak_bytes'] = max(record['peak_bytes'], peak)
                record['step_peak_bytes'] = max(record['step_peak_bytes'],
                                                peak - resident)
            if it >= warmup:
                out[name]['times'].append(seconds)
        if log is not None:
            kind = 'warm-up' if it < warmup else 'timed'
            log(f'round {it + 1}/{warmup + iters} ({kind}) done')
    for record in out.values():
        record['median'] = statistics.median(record['times'])
        if not cuda:
            record['peak_bytes'] = record['step_peak_bytes'] = None
    return out


def schedule_mean_ratio(scheduler: BaseMaskRatio, max_iters: int) -> float:
    """Mean mask ratio of a whole run: ``mean over t < T of ratio(t, T)``.

    The encoder's cost is about linear in the visible tokens, so one step at
    this ratio costs about what a step of the run costs on average.
    """
    if int(max_iters) != max_iters or max_iters < 1:
        raise ValueError(f'max_iters must be a positive integer, got '
                         f'{max_iters!r}')
    return sum(scheduler.ratio(t, max_iters)
               for t in range(max_iters)) / max_iters


def parse_ratios(values: Sequence[str], cosine_mean: float) -> List[float]:
    """``['cosine-mean', '0.75']`` -> ``[cosine_mean, 0.75]`` (each in
    [0, 1), no repeats)."""
    out: List[float] = []
    for value in values:
        if value == 'cosine-mean':
            ratio = cosine_mean
        else:
            try:
                ratio = float(value)
            except ValueError:
                raise ValueError(f"mask ratio must be 'cosine-mean' or a "
                                 f'number in [0, 1), got {value!r}') from None
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f'mask ratio must be in [0, 1), got {value!r}')
        if ratio not in out:
            out.append(ratio)
    return out
