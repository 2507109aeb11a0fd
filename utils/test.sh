#!/usr/bin/env bash
# Run the test suite: bootstraps the environment (utils/setup_env.sh), checks the code with ruff
# (configuration in pyproject.toml), then pytest.
# Extra arguments go to pytest, e.g. `utils/test.sh -k model -x`, or `utils/test.sh -m slow`
# for the long runs (full recipe, benchmarks) that are deselected by default.
set -euo pipefail
cd "$(dirname "$0")/.."
. utils/setup_env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Lint first (a second or so): style violations fail the run as failing tests do.
python -m ruff check --quiet . || { echo "ruff: fix the violations above (ruff check --fix . fixes many)" >&2; exit 1; }
exec python -m pytest "$@"
