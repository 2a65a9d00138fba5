#!/usr/bin/env bash
# Installs psycopg 3 (a PostgreSQL driver nobody on this project wrote) into a virtualenv in a
# cache directory outside the repository, for the end-to-end client tests. Safe to rerun.
# Prints the venv's python on stdout.
set -euo pipefail
source "$(dirname "$0")/python-venv.sh"
VENV="${AGATE_PY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/agate/psycopg-venv}"
python_venv_install install-psycopg "${VENV}" 'import psycopg' 'psycopg[binary]'
echo "${VENV}/bin/python"
