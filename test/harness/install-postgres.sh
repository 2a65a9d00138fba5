#!/usr/bin/env bash
# Installs the PostgreSQL 15 binaries that Agate's integration tests run
# against. Safe to run repeatedly: when the binaries already exist it only
# reports that and exits 0.
#
# The harness (test/harness/postgres.ts) starts its own throwaway clusters on
# random loopback ports, so all we need from the distribution is the binaries.
# The Debian packages also create and start a default cluster on port 5432;
# we keep it from starting (or stop it) so it never collides with anything.
#
# pgaudit (the Debian package postgresql-15-pgaudit) is installed too: the
# pgaudit oracle suite (test/e2e/pgaudit-oracle.test.ts) reads what the
# server really executed from its log, independently of Agate's record.
set -euo pipefail

PG_MAJOR=15
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
REQUIRED=(postgres psql pgbench initdb pg_ctl)
PGAUDIT_LIB="/usr/lib/postgresql/${PG_MAJOR}/lib/pgaudit.so"

log() { printf 'install-postgres: %s\n' "$*"; }
die() { printf 'install-postgres: ERROR: %s\n' "$*" >&2; exit 1; }

missing_binaries() {
  local b out=()
  for b in "${REQUIRED[@]}"; do
    [[ -x "${PG_BIN}/${b}" ]] || out+=("${b}")
  done
  [[ -f "${PGAUDIT_LIB}" ]] || out+=("pgaudit")
  echo "${out[*]:-}"
}

missing="$(missing_binaries)"
if [[ -z "${missing}" ]]; then
  log "PostgreSQL ${PG_MAJOR} and pgaudit already installed in ${PG_BIN}; nothing to do."
  log "$("${PG_BIN}/postgres" --version)"
  exit 0
fi
log "missing in ${PG_BIN}: ${missing}; installing PostgreSQL ${PG_MAJOR}."

# apt needs root; use sudo when we are not root and it is available.
SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 \
    || die "not running as root and sudo is not available; cannot run apt-get."
  SUDO=(sudo)
fi
command -v apt-get >/dev/null 2>&1 \
  || die "apt-get not found; this script supports Debian/Ubuntu only. Install PostgreSQL ${PG_MAJOR} so that ${PG_BIN}/postgres exists."

# A policy-rc.d that exits 101 tells invoke-rc.d not to start services, so the
# package's default cluster is not launched on 5432 during installation. Only
# add one when none exists, and remove only the one we added.
POLICY=/usr/sbin/policy-rc.d
added_policy=0
cleanup() {
  if [[ "${added_policy}" -eq 1 ]]; then
    "${SUDO[@]}" rm -f "${POLICY}"
    log "removed temporary ${POLICY}."
  fi
}
trap cleanup EXIT
if [[ ! -e "${POLICY}" ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "${POLICY}" >/dev/null
  "${SUDO[@]}" chmod 755 "${POLICY}"
  added_policy=1
  log "added temporary ${POLICY} so apt does not start the default cluster."
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

log "running apt-get update."
"${SUDO[@]}" apt-get update -q || die "apt-get update failed (is the network / apt mirror reachable?)."

if "${SUDO[@]}" apt-get install "${APT_OPTS[@]}" "postgresql-${PG_MAJOR}" "postgresql-client-${PG_MAJOR}" "postgresql-${PG_MAJOR}-pgaudit"; then
  log "installed postgresql-${PG_MAJOR}, postgresql-client-${PG_MAJOR} and postgresql-${PG_MAJOR}-pgaudit."
else
  log "postgresql-${PG_MAJOR} not installable; falling back to the postgresql / postgresql-client meta packages."
  "${SUDO[@]}" apt-get install "${APT_OPTS[@]}" postgresql postgresql-client \
    || die "apt-get install of postgresql-${PG_MAJOR} and of the postgresql meta packages both failed."
fi

# Stop whatever the packages may have started anyway (e.g. when a system
# policy-rc.d allowed it) and mark the default clusters manual so nothing
# brings them back on 5432 later. The binaries are all the harness uses.
if command -v service >/dev/null 2>&1; then
  "${SUDO[@]}" service postgresql stop >/dev/null 2>&1 || true
fi
if command -v pg_lsclusters >/dev/null 2>&1; then
  while read -r ver name _rest; do
    [[ -n "${ver}" && -n "${name}" ]] || continue
    "${SUDO[@]}" pg_ctlcluster "${ver}" "${name}" stop >/dev/null 2>&1 || true
    conf="/etc/postgresql/${ver}/${name}/start.conf"
    if [[ -f "${conf}" ]]; then
      echo manual | "${SUDO[@]}" tee "${conf}" >/dev/null
      log "default cluster ${ver}/${name} stopped and set to manual start."
    fi
  done < <(pg_lsclusters --no-header 2>/dev/null || true)
fi

missing="$(missing_binaries)"
if [[ -n "${missing}" ]]; then
  installed="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tr '\n' ' ')"
  die "installation finished but ${PG_BIN} still lacks: ${missing}. Versions present: ${installed:-none}. The apt sources may not provide PostgreSQL ${PG_MAJOR} (Debian 12 does)."
fi
log "done: $("${PG_BIN}/postgres" --version)"
