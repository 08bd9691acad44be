#!/usr/bin/env bash
# Training on a SLURM cluster: one srun step, one task per GPU; each task
# runs tools/train.py --launcher slurm, which reads its rank from SLURM.
# Usage:
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# Environment: GPUS, GPUS_PER_NODE, GRES, CPUS_PER_TASK, PORT, SRUN_ARGS,
# PYTHON; see tools/launchers/srun.sh.
set -euo pipefail
USAGE="$0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]"
source "$(dirname "$0")/launchers/srun.sh"
[ $# -ge 4 ] ||
    usage "PARTITION, JOB_NAME, CONFIG and WORK_DIR are required."
srun_launch "$1" "$2" train.py "$3" --work-dir="$4" --launcher slurm "${@:5}"
