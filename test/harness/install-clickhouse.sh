#!/usr/bin/env bash
# Installs Debian's clickhouse-server (18.16: old, used to prove the HTTP transport only) when
# missing, and keeps the packaged service from running on its default ports.
set -euo pipefail
if [ -x /usr/sbin/clickhouse-server ]; then exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-clickhouse: installing Debian's clickhouse-server" >&2
$SUDO apt-get update -q >&2 || true
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q clickhouse-server >&2; then
  echo "install-clickhouse: ERROR: apt-get install clickhouse-server failed" >&2
  exit 1
fi
$SUDO service clickhouse-server stop >/dev/null 2>&1 || true
[ -x /usr/sbin/clickhouse-server ] || { echo "install-clickhouse: ERROR: /usr/sbin/clickhouse-server missing after install" >&2; exit 1; }
