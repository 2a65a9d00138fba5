#!/usr/bin/env bash
# Installs pydantic-ocsf (Pydantic models generated from the official OCSF schema, written by
# nobody on this project) into a virtualenv in a cache directory outside the repository, for the
# OCSF conformance test. Safe to rerun: when the venv already imports the OCSF 1.3.0 models it
# only prints its path. Prints the venv's python on stdout.
set -euo pipefail

VENV="${AGATE_OCSF_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/agate/ocsf-venv}"
VERSION="${AGATE_PYDANTIC_OCSF_VERSION:-3.0.0}"
log() { printf 'install-ocsf-validator: %s\n' "$*" >&2; }
probe='import ocsf.v1_3_0'

if [[ -x "${VENV}/bin/python" ]] && "${VENV}/bin/python" -c "${probe}" 2>/dev/null; then
  echo "${VENV}/bin/python"
  exit 0
fi
PY="$(command -v python3 || true)"
[[ -n "${PY}" ]] || { log "python3 is not installed (Debian: apt-get install python3 python3-venv)"; exit 1; }
log "creating ${VENV}"
mkdir -p "$(dirname "${VENV}")"
"${PY}" -m venv "${VENV}" >&2 || { log "python3 -m venv failed (Debian: apt-get install python3-venv)"; exit 1; }
"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "pydantic-ocsf==${VERSION}" >&2
"${VENV}/bin/python" -c "${probe}" >&2
echo "${VENV}/bin/python"
