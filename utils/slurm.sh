#!/usr/bin/env bash
# SLURM backend: utils/slurm.sh [--config conf/slurm.conf] [--gpu N] [--num_nodes M] [--resumable] LOG COMMAND...
# Submits COMMAND as one batch job (sbatch --wait) that starts it with srun, one task per GPU
# on each node (--ntasks-per-node = GPUs per node, as Lightning's DDP expects under SLURM).
# --resumable (training): COMMAND checkpoints and stops on SIGUSR1/SIGTERM and resumes when rerun,
# so the job asks for SIGUSR1 signal_seconds before its time limit and is requeueable (see below).
set -euo pipefail
config=conf/slurm.conf; gpu=0; num_nodes=1; resumable=false
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --gpu) gpu="$2"; shift 2 ;;
    --num_nodes) num_nodes="$2"; shift 2 ;;
    --resumable) resumable=true; shift ;;
    *) echo "slurm.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: slurm.sh [options] LOG COMMAND..." >&2; exit 1; }
log="$1"; shift
[ -f "${config}" ] || { echo "slurm.sh: ${config} not found" >&2; exit 1; }
# Settings: partition, time, cpus_per_task, mem, extra, signal_seconds, requeue (see conf/slurm.conf).
partition=""; time_limit=""; cpus_per_task=""; mem=""; gpu_partition=""; extra=""; signal_seconds=300; requeue=true
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
if [ "${resumable}" = true ]; then
  # The warning signal goes to the srun tasks (the training processes), hence USR1 WITHOUT "B:":
  # "B:USR1" signals only the batch shell, which here is the --wrap shell waiting for srun in the
  # foreground; bash defers traps until srun returns, and without a trap USR1 just kills it, so the
  # training would never hear of it. Plain "USR1@T" signals every task of the job's steps (all
  # ranks on all nodes; the ranks agree on stopping anyway), not the batch shell. On SIGUSR1 the
  # training finishes its step, writes last.ckpt, runs `scontrol requeue $SLURM_JOB_ID` and exits;
  # the requeued job runs this same command again, which resumes from last.ckpt. SLURM may send
  # the signal up to 60 s early; signal_seconds must cover a step plus a checkpoint write.
  if ! [[ "${signal_seconds}" =~ ^[0-9]+$ ]]; then
    echo "slurm.sh: signal_seconds in ${config} must be a whole number of seconds, got '${signal_seconds}'" >&2; exit 1
  fi
  if [ "${signal_seconds}" -gt 0 ]; then args+=(--signal "USR1@${signal_seconds}"); fi
  # --requeue: also a preempted job or one on a failed node goes back to the queue (same job id).
  if [ "${requeue}" = true ]; then args+=(--requeue); fi
fi
# shellcheck disable=SC2206
[ -n "${extra}" ] && args+=(${extra})
mkdir -p "$(dirname "${log}")"
printf -v quoted '%q ' "$@"
echo "$(date '+%Y-%m-%d %H:%M:%S') (slurm.sh) sbatch ${args[*]} -> srun ${quoted}" >&2
# sbatch --wait polls the job's state until it is finished (src/sbatch/sbatch.c, _job_wait: a base
# state past SUSPENDED); a requeued job is PENDING again under the same id, so --wait keeps waiting
# through any number of requeues and returns the exit status of the run that ends the job: the
# recipe's next stage starts when the training has really ended.
sbatch "${args[@]}" --wrap "srun --kill-on-bad-exit=1 ${quoted}"
