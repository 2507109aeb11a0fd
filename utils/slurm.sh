#!/usr/bin/env bash
# SLURM backend: utils/slurm.sh [--config conf/slurm.conf] [--gpu N] [--num_nodes M] LOG COMMAND...
# Submits COMMAND as one batch job (sbatch --wait) that starts it with srun, one task per GPU
# on each node (--ntasks-per-node = GPUs per node, as Lightning's DDP expects under SLURM).
set -euo pipefail
config=conf/slurm.conf; gpu=0; num_nodes=1
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --gpu) gpu="$2"; shift 2 ;;
    --num_nodes) num_nodes="$2"; shift 2 ;;
    *) echo "slurm.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: slurm.sh [options] LOG COMMAND..." >&2; exit 1; }
log="$1"; shift
[ -f "${config}" ] || { echo "slurm.sh: ${config} not found" >&2; exit 1; }
# Settings: partition, time, cpus_per_task, mem, extra (see conf/slurm.conf).
partition=""; time_limit=""; cpus_per_task=""; mem=""; gpu_partition=""; extra=""
# shellcheck disable=SC1090
. "${config}"
command -v sbatch >/dev/null || { echo "slurm.sh: sbatch not found (not on a SLURM cluster? use --cmd_backend local)" >&2; exit 1; }
tasks=$(( gpu > 0 ? gpu : 1 ))
args=(--job-name "$(basename "${log}" .log)" --output "${log}" --open-mode append --wait
      --nodes "${num_nodes}" --ntasks-per-node "${tasks}")
part="${partition}"
if [ "${gpu}" -gt 0 ]; then
  args+=(--gpus-per-node "${gpu}")
  [ -n "${gpu_partition}" ] && part="${gpu_partition}"
fi
[ -n "${part}" ] && args+=(--partition "${part}")
[ -n "${time_limit}" ] && args+=(--time "${time_limit}")
[ -n "${cpus_per_task}" ] && args+=(--cpus-per-task "${cpus_per_task}")
[ -n "${mem}" ] && args+=(--mem "${mem}")
# shellcheck disable=SC2206
[ -n "${extra}" ] && args+=(${extra})
mkdir -p "$(dirname "${log}")"
printf -v quoted '%q ' "$@"
echo "$(date '+%Y-%m-%d %H:%M:%S') (slurm.sh) sbatch ${args[*]} -> srun ${quoted}" >&2
sbatch "${args[@]}" --wrap "srun --kill-on-bad-exit=1 ${quoted}"
