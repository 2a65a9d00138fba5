#!/usr/bin/env bash
# Installs schemathesis (the OpenAPI fuzzer, from PyPI) into a virtualenv kept outside the repo,
# once per machine. Prints the path of the `st` executable on its last line.
# Override the location with AGATE_CACHE_DIR (default ~/.cache/agate).
set -euo pipefail
version="4.32.5"
cache="${AGATE_CACHE_DIR:-$HOME/.cache/agate}"
venv="$cache/schemathesis-$version"
# The marker is written last, so an interrupted install is redone rather than half-used.
if [ ! -f "$venv/.installed" ]; then
  command -v python3 >/dev/null || { echo "python3 is required to install schemathesis" >&2; exit 1; }
  mkdir -p "$cache"
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$version" >&2; then
    rm -rf "$venv"
    echo "could not install schemathesis $version from PyPI" >&2
    exit 1
  fi
  touch "$venv/.installed"
fi
echo "$venv/bin/st"
