#!/usr/bin/env bash
# Job backends. run.sh sources this after parsing its options; every command it runs has one form:
#   $train_cmd --gpu N --num_nodes M LOG COMMAND...
#   $run_cmd   LOG COMMAND...            (data, evaluation, report: one task)
# local: runs COMMAND here, output to the terminal and LOG.
# slurm: submits COMMAND with sbatch (waiting for it) and starts it with srun, one task per GPU;
#        partition, time, CPUs, memory and extra flags come from conf/slurm.conf.
case "${cmd_backend:-local}" in
  local)
    train_cmd="utils/local.sh"
    run_cmd="utils/local.sh" ;;
  slurm)
    train_cmd="utils/slurm.sh --config ${slurm_conf:-conf/slurm.conf} --resumable"
    run_cmd="utils/slurm.sh --config ${slurm_conf:-conf/slurm.conf} --gpu 0" ;;
  *)
    echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (use local or slurm)" >&2
    exit 1 ;;
esac
