#!/usr/bin/env bash
# Kaldi/ESPnet-style option parsing, sourced by run.sh after it sets its defaults:
#   --name value | --name=value   sets the shell variable `name` (dashes become underscores);
#                                 it must already exist, so a typo is an error.
#   --section.key value           a dotted name is a YAML override of the recipe config; each
#                                 one is appended to the array `overrides` as "--section.key value".
#   --help | -h                   prints $help_message and exits 0.
# Positional arguments are left in "$@".
if ! declare -p overrides >/dev/null 2>&1; then overrides=(); fi
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      printf '%s\n' "${help_message:-no help available}"
      exit 0 ;;
    --*=*)
      _po_name="${1%%=*}"; _po_value="${1#*=}"; shift ;;
    --*)
      _po_name="$1"
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value (see --help)" >&2; exit 1
      fi
      _po_value="$2"; shift 2 ;;
    *)
      break ;;
  esac
  _po_name="${_po_name#--}"
  if [[ "${_po_name}" == *.* ]]; then
    overrides+=("--${_po_name}" "${_po_value}")
    continue
  fi
  _po_var="${_po_name//-/_}"
  if ! declare -p "${_po_var}" >/dev/null 2>&1 || [[ "${_po_var}" == _* || "${_po_var}" == overrides ]]; then
    echo "$0: unknown option --${_po_name} (see --help; config values are set as --section.key value)" >&2
    exit 1
  fi
  printf -v "${_po_var}" '%s' "${_po_value}"
done
unset _po_name _po_value _po_var
