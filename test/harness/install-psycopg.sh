#!/usr/bin/env bash
# Installs psycopg 3 (a PostgreSQL driver nobody on this project wrote) into a virtualenv in a
# cache directory outside the repository, for the end-to-end client tests. Safe to rerun: when
# the venv already imports psycopg it only prints its path. Prints the venv's python on stdout.
set -euo pipefail

VENV="${AGATE_PY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/agate/psycopg-venv}"
log() { printf 'install-psycopg: %s\n' "$*" >&2; }

if [[ -x "${VENV}/bin/python" ]] && "${VENV}/bin/python" -c 'import psycopg' 2>/dev/null; then
  echo "${VENV}/bin/python"
  exit 0
fi
PY="$(command -v python3 || true)"
[[ -n "${PY}" ]] || { log "python3 is not installed (Debian: apt-get install python3 python3-venv)"; exit 1; }
log "creating ${VENV}"
mkdir -p "$(dirname "${VENV}")"
"${PY}" -m venv "${VENV}" >&2 || { log "python3 -m venv failed (Debian: apt-get install python3-venv)"; exit 1; }
"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "psycopg[binary]" >&2
"${VENV}/bin/python" -c 'import psycopg; print(psycopg.__version__)' >&2
echo "${VENV}/bin/python"
