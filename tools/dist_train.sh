#!/usr/bin/env bash
# Distributed training with torchrun (gloo on CPU, nccl on GPU), on one node
# or several. Usage: tools/dist_train.sh CONFIG NPROC [train.py args]
#   NPROC  processes on this node (one per GPU).
# Multi-node (start the script once on every node): NNODES, NODE_RANK,
# MASTER_ADDR, PORT; see tools/launchers/torchrun.sh.
set -euo pipefail
USAGE="$0 CONFIG NPROC [train.py args]"
source "$(dirname "$0")/launchers/torchrun.sh"
[ $# -ge 2 ] || usage "CONFIG and NPROC are required."
torchrun_launch "$2" train.py "$1" --launcher pytorch "${@:3}"
