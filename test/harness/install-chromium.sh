#!/usr/bin/env bash
# Installs Debian's chromium, the real browser the console's end-to-end tests drive through
# playwright-core (which is pointed at /usr/bin/chromium and never downloads a browser of its own).
# Does nothing when it is already present.
set -euo pipefail
log() { printf 'install-chromium: %s\n' "$*"; }
die() { printf 'install-chromium: ERROR: %s\n' "$*" >&2; exit 1; }
if [[ -x /usr/bin/chromium ]]; then
  log "chromium already installed; nothing to do."
  exit 0
fi
SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "not root and sudo is not available; cannot run apt-get."
  SUDO=(sudo)
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install chromium by hand."
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1; then
  "${SUDO[@]}" apt-get update -q >/dev/null
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null || die "apt-get could not install chromium."
fi
[[ -x /usr/bin/chromium ]] || die "chromium installed but /usr/bin/chromium is missing."
log "chromium installed."
