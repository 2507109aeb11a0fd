#!/usr/bin/env bash
# Local backend: utils/local.sh [--gpu N] [--num_nodes M] LOG COMMAND...
# Runs COMMAND in the foreground, output to the terminal and appended to LOG.
set -euo pipefail
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --gpu|--num_nodes) shift 2 ;;
    *) echo "local.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
log="$1"; shift
mkdir -p "$(dirname "${log}")"
echo "# $(date '+%Y-%m-%d %H:%M:%S') $*" >> "${log}"
set -o pipefail
"$@" 2>&1 | tee -a "${log}"
