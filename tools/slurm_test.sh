#!/usr/bin/env bash
# Testing on a SLURM cluster: one srun step, one task per GPU; each task
# runs tools/test.py --launcher slurm, which reads its rank from SLURM.
# Usage:
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# Environment: GPUS, GPUS_PER_NODE, GRES, CPUS_PER_TASK, PORT, SRUN_ARGS,
# PYTHON; see tools/launchers/srun.sh.
set -euo pipefail
USAGE="$0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]"
source "$(dirname "$0")/launchers/srun.sh"
[ $# -ge 4 ] ||
    usage "PARTITION, JOB_NAME, CONFIG and CHECKPOINT are required."
srun_launch "$1" "$2" test.py "$3" "$4" --launcher slurm "${@:5}"
