# Shared by tools/dist_train.sh and tools/dist_test.sh (sourced, not run).
# The caller sets USAGE (its usage line) and calls
#   torchrun_launch NPROC TOOL [tool args]
# which checks NPROC and the multi-node variables and starts TOOL (train.py
# or test.py) with torchrun (gloo on CPU, nccl on GPU).
# Environment (multi-node: start the calling script once on every node):
#   NNODES       number of nodes (default 1)
#   NODE_RANK    this node's index, 0 .. NNODES-1 (default 0)
#   MASTER_ADDR  address of node 0, reachable from every node (127.0.0.1)
#   PORT         free TCP port on node 0 (MASTER_PORT, else 29500)
#   PYTHON       interpreter (python)
usage() {
    echo "Usage: $USAGE" >&2
    echo "  Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (see" \
         "tools/launchers/torchrun.sh)." >&2
    [ $# -eq 0 ] || echo "Error: $*" >&2
    exit 2
}
is_count() { [[ $1 =~ ^[0-9]+$ ]]; }

torchrun_launch() {
    local nproc=$1 tool=$2
    shift 2
    local nnodes=${NNODES:-1} node_rank=${NODE_RANK:-0}
    local port=${PORT:-${MASTER_PORT:-29500}}
    local master_addr=${MASTER_ADDR:-127.0.0.1}
    is_count "$nproc" && [ "$nproc" -ge 1 ] ||
        usage "NPROC must be a positive integer, got '$nproc'."
    is_count "$nnodes" && [ "$nnodes" -ge 1 ] ||
        usage "NNODES must be a positive integer, got '$nnodes'."
    is_count "$node_rank" && [ "$node_rank" -lt "$nnodes" ] ||
        usage "NODE_RANK must be 0 .. NNODES-1 ($((nnodes - 1))), got" \
              "'$node_rank'."
    is_count "$port" && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
        usage "PORT must be a TCP port, got '$port'."
    if [ "$nnodes" -gt 1 ] && [ "$node_rank" -gt 0 ] &&
            [[ $master_addr =~ ^(127\.|localhost$|::1$) ]]; then
        echo "Warning: NODE_RANK=$node_rank of NNODES=$nnodes connects to" \
             "MASTER_ADDR=$master_addr, this machine; on another node set" \
             "MASTER_ADDR to node 0's address." >&2
    fi
    local tools
    tools=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    PYTHONPATH="$tools/..${PYTHONPATH:+:$PYTHONPATH}" \
    "${PYTHON:-python}" -m torch.distributed.run \
        --nnodes="$nnodes" \
        --node_rank="$node_rank" \
        --master_addr="$master_addr" \
        --nproc_per_node="$nproc" \
        --master_port="$port" \
        "$tools/$tool" "$@"
}
