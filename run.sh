#!/usr/bin/env bash
# AudioSep recipe (Kaldi/ESPnet style): stage control and paths only; every model, data and
# training setting lives in one YAML file under conf/ (any of its values can be overridden
# from the command line as --section.key value).
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh) $*"; }

# ----------------------------------------------------------------- options (see --help)
stage=0                  # first stage to run
stop_stage=5             # last stage to run
conf=conf/mini.yaml      # the setup: mini, audiosep_base, audiosep_clip, dcase2024, released_checkpoint
tag=""                   # experiment tag: exp/<conf name>[_<tag>]
data_dir=data            # where corpora are prepared
exp_root=exp             # where experiments go
cmd_backend=local        # local or slurm (see cmd.sh, conf/slurm.conf)
slurm_conf=conf/slurm.conf
ngpu=0                   # GPUs per node for training (0: CPU)
num_nodes=1              # nodes for training
skip_setup=false         # true: use the current Python environment as it is
overrides=()

help_message="Usage: $0 [options] [--section.key value ...]

The AudioSep recipe. Stages:
  0 data      prepare corpora into datafiles (the mini corpus is synthesised)
  1 mixtures  build the validation and evaluation mixtures
  2 train     train (or import the released checkpoint, conf/released_checkpoint.yaml)
  3 eval      SI-SDR / SDRi on the evaluation sets, per item, resumable
  4 enhance   speech enhancement (query \"speech\"): PESQ, CSIG, CBAK, COVL, SSNR, STOI
  5 report    Markdown/CSV tables beside the paper's numbers, figures

Options (default in brackets):
  --stage N          first stage [${stage}]
  --stop_stage N     last stage [${stop_stage}]
  --conf FILE        setup YAML [${conf}]
  --tag NAME         experiment tag, the directory is exp/<conf name>[_<tag>] [${tag}]
  --data_dir DIR     prepared data [${data_dir}]
  --exp_root DIR     experiments [${exp_root}]
  --cmd_backend B    local or slurm [${cmd_backend}]
  --slurm_conf FILE  SLURM settings [${slurm_conf}]
  --ngpu N           GPUs per node for training [${ngpu}]
  --num_nodes N      nodes for training [${num_nodes}]
  --skip_setup BOOL  do not bootstrap .venv, use the active Python [${skip_setup}]
  --section.key V    override any value of the YAML, e.g. --training.max_steps 2000
  -h, --help         this text

Examples:
  ./run.sh                                         # the mini corpus, offline, CPU, minutes
  ./run.sh --stage 3 --stop_stage 3                # re-evaluate the trained model
  ./run.sh --conf conf/audiosep_base.yaml --data.corpora.audioset.root /data/audioset ... (see the conf header)
  ./run.sh --conf conf/audiosep_base.yaml --stage 2 --stop_stage 2 --cmd_backend slurm --ngpu 8 --num_nodes 4
  ./run.sh --conf conf/released_checkpoint.yaml --stage 1 --paths.benchmark_dir /data/audiosep_eval \\
      --data.eval_mixtures.voicebank_demand.root /data/voicebank_demand"

cd "$(dirname "$0")"
. utils/parse_options.sh
if [ $# -gt 0 ]; then
  echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1
fi
for v in stage stop_stage ngpu num_nodes; do
  if ! [[ "${!v}" =~ ^[0-9]+$ ]]; then echo "$0: --${v} must be a non-negative integer, got '${!v}'" >&2; exit 1; fi
done
if [ ! -f "${conf}" ]; then
  echo "$0: config ${conf} not found (set --conf to one of: $(ls conf/*.yaml | tr '\n' ' '))" >&2; exit 1
fi

if [ "${skip_setup}" != true ]; then
  . utils/setup_env.sh
fi
. ./cmd.sh

conf_name="$(basename "${conf}" .yaml)"
expdir="${exp_root}/${conf_name}${tag:+_${tag}}"
config="${expdir}/config.yaml"
step() { python "egs/audiosep/$1" "${@:2}"; }
mark_done() { mkdir -p "${expdir}/done" && date '+%Y-%m-%dT%H:%M:%S' > "${expdir}/done/stage$1"; }

# Resolve the config once per experiment (later calls reuse it, with new overrides on top),
# and check every required setting before any stage runs.
step config.py resolve --conf "${conf}" --out "${config}" \
  --paths.data_dir "${data_dir}" --paths.exp_dir "${expdir}" \
  --training.devices "${ngpu}" --training.num_nodes "${num_nodes}" ${overrides[@]+"${overrides[@]}"}
step config.py check --config "${config}" --stages "${stage}-${stop_stage}"
log "experiment directory: ${expdir} (config: ${config})"

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  log "Stage 0: data preparation"
  ${run_cmd} "${expdir}/log/data.log" python egs/audiosep/prepare_data.py --config "${config}"
  mark_done 0
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  log "Stage 1: validation and evaluation mixtures"
  ${run_cmd} "${expdir}/log/mixtures.log" python egs/audiosep/make_mixtures.py --config "${config}"
  mark_done 1
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  import_model="$(step config.py get --config "${config}" import.model)"
  if [ -n "${import_model}" ]; then
    log "Stage 2: no training: importing ${import_model} (import.model)"
    ${run_cmd} "${expdir}/log/import.log" python egs/audiosep/import_model.py --config "${config}"
  else
    log "Stage 2: training (${ngpu} GPU(s) x ${num_nodes} node(s), backend ${cmd_backend})"
    ${train_cmd} --gpu "${ngpu}" --num_nodes "${num_nodes}" "${expdir}/log/train.log" \
      python egs/audiosep/train.py --config "${config}"
  fi
  mark_done 2
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  log "Stage 3: evaluation"
  ${run_cmd} "${expdir}/log/eval.log" python egs/audiosep/evaluate.py --config "${config}"
  mark_done 3
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  log "Stage 4: speech enhancement"
  ${run_cmd} "${expdir}/log/enhance.log" python egs/audiosep/enhance.py --config "${config}"
  mark_done 4
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  log "Stage 5: report"
  ${run_cmd} "${expdir}/log/report.log" python egs/audiosep/report.py --config "${config}"
  mark_done 5
  log "report: ${expdir}/report/report.md"
fi
log "done (stages ${stage}-${stop_stage})"
