# Shared by tools/slurm_train.sh and tools/slurm_test.sh (sourced, not run).
# The caller sets USAGE (its usage line) and calls
#   srun_launch PARTITION JOB_NAME TOOL [tool args]
# which runs one srun step with one task per GPU; each task runs TOOL
# (train.py or test.py) with --launcher slurm and reads its rank from SLURM.
# Environment:
#   GPUS           tasks in all, one per GPU (default 8)
#   GPUS_PER_NODE  tasks and GPUs per node (default 8); GPUS must be a
#                  multiple of it, or below it (one node, GPUS tasks)
#   GRES           srun --gres (default gpu:<tasks per node>); GRES=none on a
#                  CPU-only cluster leaves --gres out (gloo on CPU)
#   CPUS_PER_TASK  CPUs per task (default 5)
#   PORT           rendezvous port (also MASTER_PORT; default one per job,
#                  20000 + SLURM_JOB_ID % 10000)
#   SRUN_ARGS      extra srun options, e.g. "--time=1:00:00"
#   PYTHON         interpreter (python)
usage() {
    echo "Usage: $USAGE" >&2
    echo "  Environment: GPUS, GPUS_PER_NODE, GRES, CPUS_PER_TASK, PORT," \
         "SRUN_ARGS (see tools/launchers/srun.sh)." >&2
    [ $# -eq 0 ] || echo "Error: $*" >&2
    exit 2
}
is_count() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ]; }

srun_launch() {
    local partition=$1 job_name=$2 tool=$3
    shift 3
    local gpus=${GPUS:-8} gpus_per_node=${GPUS_PER_NODE:-8}
    local cpus_per_task=${CPUS_PER_TASK:-5}
    is_count "$gpus" || usage "GPUS must be a positive integer, got '$gpus'."
    is_count "$gpus_per_node" ||
        usage "GPUS_PER_NODE must be a positive integer, got" \
              "'$gpus_per_node'."
    is_count "$cpus_per_task" ||
        usage "CPUS_PER_TASK must be a positive integer, got" \
              "'$cpus_per_task'."
    local tasks_per_node=$gpus_per_node
    if [ "$gpus" -lt "$gpus_per_node" ]; then
        tasks_per_node=$gpus  # one node, and only the GPUs it uses
    elif [ $((gpus % gpus_per_node)) -ne 0 ]; then
        usage "GPUS=$gpus is not a multiple of" \
              "GPUS_PER_NODE=$gpus_per_node (a node would run fewer tasks" \
              "than the GPUs it holds)."
    fi
    local gres=${GRES:-gpu:$tasks_per_node}
    local gres_args=()
    [ "$gres" = none ] || gres_args=(--gres="$gres")
    local port=${PORT:-${MASTER_PORT:-}}
    if [ -n "$port" ]; then
        [[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] &&
            [ "$port" -le 65535 ] ||
            usage "PORT must be a TCP port, got '$port'."
        export MASTER_PORT=$port  # srun passes the environment on
    fi
    local srun_argv=()
    read -r -a srun_argv <<< "${SRUN_ARGS:-}"
    local tools
    tools=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    PYTHONPATH="$tools/..${PYTHONPATH:+:$PYTHONPATH}" \
    srun -p "$partition" \
        --job-name="$job_name" \
        ${gres_args[@]+"${gres_args[@]}"} \
        --ntasks="$gpus" \
        --ntasks-per-node="$tasks_per_node" \
        --cpus-per-task="$cpus_per_task" \
        --kill-on-bad-exit=1 \
        ${srun_argv[@]+"${srun_argv[@]}"} \
        "${PYTHON:-python}" -u "$tools/$tool" "$@"
}
