#!/usr/bin/env bash
# Installs PgBouncer from the Debian package for the side-by-side benchmark, without starting
# the packaged service (the benchmark runs its own instance on a loopback port). Idempotent.
set -euo pipefail
log() { printf 'install-pgbouncer: %s\n' "$*" >&2; }
if command -v pgbouncer >/dev/null 2>&1 || [[ -x /usr/sbin/pgbouncer ]]; then exit 0; fi
SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { log "not root and no sudo; install pgbouncer yourself"; exit 1; }
  SUDO=(sudo)
fi
POLICY=/usr/sbin/policy-rc.d
added=0
cleanup() { if [[ "${added}" -eq 1 ]]; then "${SUDO[@]}" rm -f "${POLICY}"; fi; }
trap cleanup EXIT
if [[ ! -e "${POLICY}" ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "${POLICY}" >/dev/null
  "${SUDO[@]}" chmod 755 "${POLICY}"
  added=1
fi
export DEBIAN_FRONTEND=noninteractive
log "installing the pgbouncer package"
"${SUDO[@]}" apt-get update -q >&2
"${SUDO[@]}" apt-get install -y -q pgbouncer >&2
"${SUDO[@]}" service pgbouncer stop >/dev/null 2>&1 || true
