#!/usr/bin/env bash
# Run the test suite: bootstraps the environment (utils/setup_env.sh), then pytest.
# Extra arguments go to pytest, e.g. `utils/test.sh -k model -x`, or `utils/test.sh -m slow`
# for the long runs (full recipe, benchmarks) that are deselected by default.
set -euo pipefail
cd "$(dirname "$0")/.."
. utils/setup_env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec python -m pytest "$@"
