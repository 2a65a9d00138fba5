#!/usr/bin/env bash
# Installs schemathesis (the OpenAPI fuzzer, from PyPI) into a virtualenv kept outside the repo,
# once per machine. Prints the path of the `st` executable on its last line.
# Override the location with AGATE_CACHE_DIR (default ~/.cache/agate).
set -euo pipefail
source "$(dirname "$0")/../harness/python-venv.sh"
version="4.32.5"
venv="${AGATE_CACHE_DIR:-$HOME/.cache/agate}/schemathesis-$version"
python_venv_install install-schemathesis "$venv" 'import schemathesis' "schemathesis==$version"
echo "$venv/bin/st"
