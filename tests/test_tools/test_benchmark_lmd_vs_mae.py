"""tools/analysis_tools/benchmark_lmd_vs_mae.py and its helpers
(step_timing.py), gpu_check.sh: FLOP counts against hand formulas, the
cosine mean ratio against its integral, argument errors, a tiny end-to-end
run. Behaviour only: no wall-clock threshold."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from tool_helpers import ROOT

sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))

import benchmark_lmd_vs_mae as bench  # noqa: E402
from step_timing import (MatmulStep, count_flops,  # noqa: E402
                         device_peak_tflops, parse_ratios, round_robin,
                         schedule_mean_ratio)

from lmd_toolkit.engine.mask_schedulers import (  # noqa: E402
    CosineMaskRatio, FixedMaskRatio)
from lmd_toolkit.models.layers import Attention  # noqa: E402

GPU_CHECK = osp.join(ROOT, 'tools', 'analysis_tools', 'gpu_check.sh')


def test_count_flops_mlp_step_matches_hand_formula():
    torch.manual_seed(0)
    B, n_in, hidden, n_out = 5, 7, 11, 3
    mlp = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, n_out))
    x = torch.randn(B, n_in)  # no grad: layer 1's input grad is skipped

    def step():
        mlp(x).square().sum().backward()

    # forward 2B(in h + h out); backward: layer 2 input + weight grads
    # (2 x 2B h out), layer 1 weight grad only (2B in h).
    expected = 2 * B * (n_in * hidden + hidden * n_out) + 4 * B * hidden * \
        n_out + 2 * B * n_in * hidden
    assert count_flops(step) == expected


@pytest.mark.parametrize('fused', [True, False])
def test_count_flops_counts_cpu_attention(fused):
    # The fused path runs the CPU flash kernel, which torch's counter does
    # not know; step_timing maps it to the same formula as the explicit path.
    torch.manual_seed(0)
    B, N, C, heads = 2, 10, 24, 4
    attn = Attention(C, heads, fused_attn=fused)
    x = torch.randn(B, N, C)
    expected = 2 * B * N * C * 3 * C + 4 * B * N * N * C + 2 * B * N * C * C
    with torch.no_grad():
        assert count_flops(lambda: attn(x)) == expected


def test_matmul_step_flops():
    step = MatmulStep(16, torch.float32, reps=3)
    assert step.flops == 3 * 2 * 16**3
    assert count_flops(step) == step.flops
    assert step.calibrate(0.0).reps == 1


def tiny_lmd_step_flops(B, patch, ratio, img=64, C=48, depth=2, D=32,
                        dec_depth=1, channels=4):
    """Hand formula of one LMD training step (forward + backward)."""
    L = (img // 8 // patch)**2
    P = patch * patch * channels
    Ne, Nd = int(L * (1 - ratio)) + 1, L + 1  # + class token
    embed = 2 * B * L * P * C
    blocks = depth * 24 * B * Ne * C**2 + dec_depth * 24 * B * Nd * D**2
    attention = depth * 4 * B * Ne**2 * C + dec_depth * 4 * B * Nd**2 * D
    rest = 2 * B * Ne * C * D + 2 * B * Nd * D * P  # decoder embed, pred
    forward = embed + blocks + attention + rest
    # Backward: twice the forward, except the patch embedding (its input,
    # the latent, needs no grad: weight grad only) and attention (torch's
    # flash-backward count recomputes the scores: 2.5x).
    return 3 * forward - embed + attention // 2


@pytest.mark.parametrize('patch', [4, 2])
def test_tiny_lmd_cached_step_flops_match_formula(tmp_path, patch):
    torch.manual_seed(0)
    cfg = bench.lmd_config(patch, 'tiny', 64)
    model = bench.build_lmd(cfg).train()
    data = bench.cached_latent_batch(cfg['projector'], 64, batch_size=3,
                                     num_images=2, cache_dir=str(tmp_path))
    assert data['inputs'].shape == (3, 4, 8, 8)
    wrapper = bench.make_optim_wrappers(model, ['fp32'], fused=False)['fp32']
    ratio = 0.6
    model.mask_ratio = ratio

    flops = count_flops(lambda: model.train_step(data, wrapper))
    assert flops == tiny_lmd_step_flops(3, patch, ratio)


def cosine_mean_integral(lo=0.15, hi=0.75, ramp=2 / 3, s=0.008):
    """Continuous-time mean of CosineMaskRatio: the ramp's mean of
    f(u) = cos^2(a u + b) / cos^2(b), a = pi / (2 (1 + s)), b = s a,
    is (1/2 - sin(2b) / (4a)) / cos^2(b); then max_ratio for the rest."""
    a = math.pi / (2 * (1 + s))
    b = s * a
    mean_f = (0.5 - math.sin(2 * b) / (4 * a)) / math.cos(b)**2
    return (1 - ramp) * hi + ramp * (lo + (hi - lo) * (1 - mean_f))


def test_cosine_mean_ratio_matches_integral():
    mean = schedule_mean_ratio(CosineMaskRatio(), 30_000)
    assert mean == pytest.approx(cosine_mean_integral(), abs=2e-4)
    assert 0.54 < mean < 0.56
    other = schedule_mean_ratio(
        CosineMaskRatio(min_ratio=0.3, max_ratio=0.6, ramp_fraction=1.0),
        30_000)
    assert other == pytest.approx(cosine_mean_integral(0.3, 0.6, 1.0),
                                  abs=2e-4)
    assert schedule_mean_ratio(FixedMaskRatio(0.4), 7) == pytest.approx(0.4)
    with pytest.raises(ValueError, match='max_iters'):
        schedule_mean_ratio(CosineMaskRatio(), 0)


def test_parse_ratios():
    assert parse_ratios(['cosine-mean', '0.75', '0.75'], 0.55) == [0.55, 0.75]
    with pytest.raises(ValueError, match="'cosine-mean' or a number"):
        parse_ratios(['cosine'], 0.55)
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        parse_ratios(['1.0'], 0.55)


def test_device_peak_tflops():
    assert device_peak_tflops('NVIDIA H200') == 989.0
    assert device_peak_tflops('NVIDIA H100 80GB HBM3') == 989.0
    assert device_peak_tflops('NVIDIA H100 PCIe') == 756.0
    assert device_peak_tflops('NVIDIA A100-SXM4-80GB') == 312.0
    assert device_peak_tflops('NVIDIA GH200 480GB') == 989.0
    assert device_peak_tflops('Some Future GPU') is None
    assert device_peak_tflops('NVIDIA H200', override=500) == 500.0
    with pytest.raises(ValueError, match='positive'):
        device_peak_tflops('NVIDIA H200', override=0)


def test_round_robin_alternates_and_skips_warmup():
    calls = []
    steps = {name: (lambda n=name: calls.append(n)) for name in 'abc'}
    logs = []
    out = round_robin(steps, iters=3, warmup=2, log=logs.append)
    assert calls == list('abc') * 5
    assert len(logs) == 5
    for record in out.values():
        assert len(record['times']) == 3
        assert record['median'] == sorted(record['times'])[1]
        assert record['peak_bytes'] is None  # CPU
    with pytest.raises(ValueError, match='iters'):
        round_robin(steps, iters=0, warmup=0)


@pytest.mark.parametrize('argv, message', [
    (['--ratios', '1.5'], '--ratios: mask ratio must be in [0, 1)'),
    (['--ratios', 'cosine'], "'cosine-mean' or a number"),
    (['--ratios', 'cosine-mean', '0.552'], 'the same ratio to 3 decimals'),
    (['--img-size', '100'], 'must be divisible by 32'),
    (['--mae-ratio', '1'], '--mae-ratio must be in'),
    (['--iters', '0'], '--iters must be >= 1'),
    (['--device', 'tpu'], "--device must be 'cpu' or 'cuda'"),
    (['--peak-tflops', '-1'], '--peak-tflops must be positive'),
    (['--patch', '3'], 'invalid choice'),
    (['--dtypes', 'fp16'], 'invalid choice'),
])
def test_argument_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(['--size', 'tiny', *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason='a CUDA device is here')
def test_cuda_refused_without_a_device(capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(['--device', 'cuda'])
    assert 'torch sees no CUDA device' in capsys.readouterr().err


def test_tiny_end_to_end(tmp_path, capsys):
    out = str(tmp_path / 'result.json')
    result = bench.main([
        '--size', 'tiny', '--patch', '4', '2', '--iters', '1', '--warmup',
        '0', '--batch-size', '2', '--cache-images', '1', '--matmul-size',
        '64', '--schedule-iters', '3000', '--json', out
    ])
    with open(out) as f:
        assert json.load(f)['rows'] == json.loads(json.dumps(result['rows']))
    rows = result['rows']
    # 2 dtypes x (MAE + 2 patches x 2 modes x 2 ratios)
    assert len(rows) == 2 * (1 + 2 * 2 * 2)
    mean = schedule_mean_ratio(CosineMaskRatio(), 3000)
    assert result['cosine_mean_ratio'] == mean
    assert sorted({r['ratio'] for r in rows if r['model'] == 'LMD'}) == [
        mean, 0.75
    ]
    by = {(r['model'], r['patch'], r['mode'], r['dtype'], r['ratio']): r
          for r in rows}
    for r in rows:
        assert r['gflop'] > 0 and r['matmul_fraction'] > 0
        assert r['peak_gib'] is None and r['step_peak_gib'] is None  # CPU
        assert r['mfu'] is None
        if r['model'] == 'MAE':
            assert r['vs_mae'] == 1.0
            assert r['visible'] == int(16 * 0.25)
        else:
            assert r['tokens'] == (8 // r['patch'])**2
            assert r['visible'] == int(r['tokens'] * (1 - r['ratio']))
        if r['mode'] == 'otf':
            # On the fly = the cached step + the projector encode.
            cached = by[('LMD', r['patch'], 'cached', r['dtype'], r['ratio'])]
            assert r['encode_gflop'] > 0
            assert r['gflop'] == pytest.approx(cached['gflop'] +
                                               r['encode_gflop'])
        # FLOPs do not depend on the dtype.
        fp32 = by[(r['model'], r['patch'], r['mode'], 'fp32', r['ratio'])]
        assert r['gflop'] == fp32['gflop']


    # The CUDA columns, printed from this result as a GPU run would fill it.
    gpu = dict(result, device='cuda:0', device_name='NVIDIA H200',
               peak_bf16_tflops=989.0)
    gpu['rows'] = [dict(r, peak_gib=1.5, step_peak_gib=0.5, mfu=0.25)
                   for r in rows]
    capsys.readouterr()
    bench.print_result(gpu)
    printed = capsys.readouterr().out
    assert '| images/s | peak GiB | step GiB | MFU |' in printed
    assert '| 1.50 | 0.50 | 0.250 |' in printed


def test_tiny_compiled_fused_channels_last():
    # The GPU check's options on the CPU: regional torch.compile (eager
    # backend: plumbing only), fused AdamW, channels-last encode, bf16.
    result = bench.main([
        '--size', 'tiny', '--patch', '4', '--modes', 'otf', '--dtypes', 'bf16',
        '--ratios', '0.75', '--iters', '1', '--warmup', '1', '--batch-size',
        '2', '--matmul-size', '64', '--compile', '--compile-backend', 'eager',
        '--fused-adamw', '--channels-last', '--schedule-iters', '100'
    ])
    # LMD tiny: 2 encoder + 1 decoder blocks; MAE tiny the same.
    assert result['compiled_blocks'] == 6
    assert [r['dtype'] for r in result['rows']] == ['bf16', 'bf16']


def run_gpu_check(*args):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable)
    return subprocess.run(['bash', GPU_CHECK, *args], cwd=ROOT,
                          capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.mark.skipif(torch.cuda.is_available(), reason='a CUDA device is here')
def test_gpu_check_refuses_without_cuda():
    proc = run_gpu_check()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'no CUDA device' in proc.stderr
    assert '--dry-run' in proc.stderr


def test_gpu_check_dry_run_on_cpu():
    proc = run_gpu_check('--dry-run', '--patch', '4', '--modes', 'cached')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'dry run' in proc.stdout
    assert '| LMD p4 | cached | bf16 |' in proc.stdout
    assert 'compile=eager' in proc.stdout
