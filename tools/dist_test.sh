#!/usr/bin/env bash
# Distributed testing with torchrun (gloo on CPU, nccl on GPU), on one node
# or several. Usage: tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args]
#   NPROC  processes on this node (one per GPU).
# Multi-node (start the script once on every node): NNODES, NODE_RANK,
# MASTER_ADDR, PORT; see tools/launchers/torchrun.sh.
set -euo pipefail
USAGE="$0 CONFIG CHECKPOINT NPROC [test.py args]"
source "$(dirname "$0")/launchers/torchrun.sh"
[ $# -ge 3 ] || usage "CONFIG, CHECKPOINT and NPROC are required."
torchrun_launch "$3" test.py "$1" "$2" --launcher pytorch "${@:4}"
