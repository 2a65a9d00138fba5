#!/usr/bin/env bash
# Installs pydantic-ocsf (Pydantic models generated from the official OCSF schema, written by
# nobody on this project) into a virtualenv in a cache directory outside the repository, for the
# OCSF conformance test. Safe to rerun. Prints the venv's python on stdout.
set -euo pipefail
source "$(dirname "$0")/python-venv.sh"
VENV="${AGATE_OCSF_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/agate/ocsf-venv}"
VERSION="${AGATE_PYDANTIC_OCSF_VERSION:-3.0.0}"
python_venv_install install-ocsf-validator "${VENV}" 'import ocsf.v1_3_0' "pydantic-ocsf==${VERSION}"
echo "${VENV}/bin/python"
