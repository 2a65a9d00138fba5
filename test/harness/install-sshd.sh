#!/usr/bin/env bash
# Installs what the SSH tests need: Debian's OpenSSH server (sshd, the upstream the proxy talks to)
# and sshpass (feeds the OIDC token to the real ssh client as its password). Does nothing when
# both are already present.
set -euo pipefail

log() { printf 'install-sshd: %s\n' "$*"; }
die() { printf 'install-sshd: ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -x /usr/sbin/sshd && -x /usr/bin/sshpass && -x /usr/bin/ssh ]]; then
  log "openssh-server and sshpass already installed; nothing to do."
  exit 0
fi
SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "not root and sudo is not available; cannot run apt-get."
  SUDO=(sudo)
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install openssh-server and sshpass by hand."
export DEBIAN_FRONTEND=noninteractive
# Debian's package would start a system sshd on port 22; the harness runs its own, so keep it down.
POLICY=/usr/sbin/policy-rc.d
added_policy=0
trap '[[ ${added_policy} -eq 1 ]] && "${SUDO[@]}" rm -f "${POLICY}"' EXIT
if [[ ! -e "${POLICY}" ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "${POLICY}" >/dev/null
  "${SUDO[@]}" chmod 755 "${POLICY}"
  added_policy=1
fi
"${SUDO[@]}" apt-get install -y -q openssh-server openssh-client sshpass \
  || { "${SUDO[@]}" apt-get update -q && "${SUDO[@]}" apt-get install -y -q openssh-server openssh-client sshpass; } \
  || die "apt-get install of openssh-server, openssh-client and sshpass failed."
[[ -x /usr/sbin/sshd ]] || die "installation finished but /usr/sbin/sshd is missing."
log "done: $(/usr/sbin/sshd -V 2>&1 | head -1 || true)"
