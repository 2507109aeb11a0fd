#!/usr/bin/env bash
# Source this file to get a Python environment with asteroid-audiosep and its extras installed.
#
#   . utils/setup_env.sh
#
# An already-active virtualenv or conda environment is used as it is (the package is installed
# into it when missing); otherwise a virtual environment is created at <repo>/.venv.
# Versions are pinned by constraints.txt. Re-running is cheap: a stamp file records what was
# installed, keyed on setup.cfg and constraints.txt.
_aas_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_aas_log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (setup_env) $*" >&2; }

if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
  _aas_prefix="${VIRTUAL_ENV:-${CONDA_PREFIX}}"
  _aas_python="$(command -v python)"
else
  _aas_prefix="${_aas_repo}/.venv"
  if [ ! -x "${_aas_prefix}/bin/python" ]; then
    _aas_base=""
    for _aas_cand in python3.11 python3 python; do
      if command -v "${_aas_cand}" >/dev/null 2>&1 && \
         "${_aas_cand}" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] < (3, 13))'; then
        _aas_base="${_aas_cand}"; break
      fi
    done
    if [ -z "${_aas_base}" ]; then
      echo "setup_env: no Python 3.10-3.12 found; install Python 3.11 or activate an environment" >&2
      return 1 2>/dev/null || exit 1
    fi
    _aas_log "creating ${_aas_prefix} with $(${_aas_base} --version)"
    "${_aas_base}" -m venv "${_aas_prefix}" || { return 1 2>/dev/null || exit 1; }
  fi
  # shellcheck disable=SC1091
  . "${_aas_prefix}/bin/activate"
  _aas_python="${_aas_prefix}/bin/python"
fi

_aas_hash="$(cat "${_aas_repo}/setup.cfg" "${_aas_repo}/constraints.txt" | "${_aas_python}" -c \
  'import hashlib, sys; print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest()[:12])')"
_aas_stamp="${_aas_prefix}/.asteroid_audiosep-${_aas_hash}"
if [ ! -f "${_aas_stamp}" ] || ! "${_aas_python}" -c 'import asteroid_audiosep' >/dev/null 2>&1; then
  _aas_log "installing asteroid-audiosep and its dependencies into ${_aas_prefix} (first time: several minutes)"
  # pip's output, less the lines some machines' pip configs add for absent find-links folders.
  _aas_pip_log="$(mktemp)"
  if "${_aas_python}" -m pip install --disable-pip-version-check -q \
      -c "${_aas_repo}/constraints.txt" -e "${_aas_repo}[all,dev]" >"${_aas_pip_log}" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "${_aas_pip_log}" >&2 || true
    rm -f "${_aas_pip_log}" "${_aas_prefix}"/.asteroid_audiosep-*
    touch "${_aas_stamp}"
  else
    grep -v "is ignored: it is neither a file nor a directory" "${_aas_pip_log}" >&2 || true
    rm -f "${_aas_pip_log}"
    echo "setup_env: pip install failed (see above)" >&2
    return 1 2>/dev/null || exit 1
  fi
fi
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::UserWarning:torchmetrics.utilities.imports}"
unset _aas_cand _aas_base _aas_hash _aas_stamp _aas_pip_log
