#!/usr/bin/env bash
# GPU check of the LMD vs MAE training-step benchmark (docs/en/benchmarks.md,
# "GPU check"). On one CUDA device, in bf16 with fused attention
# (F.scaled_dot_product_attention), torch.compile of every transformer block,
# fused AdamW and a channels-last projector encode, it times LMD ViT-B patch 4
# and patch 2, from the latent cache and encoding on the fly, at the cosine
# schedule's mean ratio and at 0.75, against mmpretrain's MAE ViT-B/16 at
# 0.75, and prints step time, images/s, peak memory and MFU against the
# device's bf16 peak. Sized to finish in under 5 minutes; it stops at 300 s.
#
# Usage (from anywhere; extra options go to benchmark_lmd_vs_mae.py and win):
#   tools/analysis_tools/gpu_check.sh [--peak-tflops 989] [--batch-size 64]
#   tools/analysis_tools/gpu_check.sh --dry-run   # CPU: tiny models, seconds
# PYTHON picks the interpreter (default: .venv/bin/python if present, else
# python3).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

dry_run=0
extra=()
for arg in "$@"; do
    if [ "$arg" = "--dry-run" ]; then dry_run=1; else extra+=("$arg"); fi
done

bench=(tools/analysis_tools/benchmark_lmd_vs_mae.py
       --dtypes bf16 --patch 4 2 --modes cached otf
       --ratios cosine-mean 0.75 --compile --fused-adamw --channels-last)

if [ "$dry_run" = 1 ]; then
    echo "gpu_check: dry run on the CPU: tiny models, torch.compile with the" \
         "eager backend, 1 timed round. It checks the plumbing, not the speed."
    exec env OMP_WAIT_POLICY=PASSIVE "$PYTHON" "${bench[@]}" --device cpu \
        --size tiny --compile-backend eager --batch-size 2 --iters 1 \
        --warmup 1 --matmul-size 256 --cache-images 2 "${extra[@]}"
fi

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no CUDA device visible to torch ($("$PYTHON" -c \
'import torch; print("torch", torch.__version__, "CUDA build", torch.version.cuda)' 2>&1));" \
         "this check needs a GPU. Run it on a GPU machine, or pass --dry-run" \
         "for a quick CPU check of the plumbing." >&2
    exit 2
fi

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
    --format=csv,noheader 2>/dev/null || true
start=$(date +%s)
timeout 300 "$PYTHON" "${bench[@]}" --device cuda --batch-size 128 \
    --iters 10 --warmup 2 --cache-images 8 "${extra[@]}"
rc=$?
echo "gpu_check: exit $rc after $(( $(date +%s) - start )) s"
if [ "$rc" = 124 ]; then
    echo "gpu_check: stopped at 300 s; rerun with fewer variants, e.g." \
         "--patch 4 --modes cached, or a smaller --batch-size." >&2
fi
exit "$rc"
