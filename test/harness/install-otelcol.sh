#!/usr/bin/env bash
# Builds a minimal OpenTelemetry Collector (the OTLP receiver and the debug exporter; source in
# test/harness/otelcol/) from the collector's Go modules into a cache outside the repository, once,
# for the trace export tests. Prints the bin directory on stdout (progress goes to stderr).
# The collector's own otelcorecol command is not published as a module (its go.mod replaces every
# component with a path in its repository), so a small module of ours names the components.
# Idempotent: a finished build is marked by bin/.complete and reused.
# Cold, the build costs about 150 s of CPU (measured 2026-12-06, fresh GOCACHE, modules present).
# Most of what it compiles beyond the two components is the collector's own telemetry
# (otelconftelemetry and its cloud resource detectors); a telemetry factory of ours with only a
# console logger compiled in 131 s instead of 152 s, too little to be worth carrying.
set -euo pipefail
source "$(dirname "$0")/go-build-cache.sh"
SRC="$(cd "$(dirname "$0")/otelcol" && pwd)"
# The release is pinned in otelcol/go.mod (and go.sum); the cache key follows it.
OTELCOL_VERSION="$(sed -n 's#^\tgo.opentelemetry.io/collector/otelcol \(v[0-9.]*\)$#\1#p' "$SRC/go.mod")"
[ -n "$OTELCOL_VERSION" ] || { echo "install-otelcol: ERROR: no go.opentelemetry.io/collector/otelcol version in $SRC/go.mod" >&2; exit 1; }
CACHE="${AGATE_CACHE:-$HOME/.cache/agate}/otelcol-$OTELCOL_VERSION"
go_build_cache_begin install-otelcol "$CACHE"
say "building the OpenTelemetry Collector $OTELCOL_VERSION (OTLP receiver, debug exporter) into $BIN; a cold build costs about 150 s of CPU"
started=$SECONDS

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath
export GOMAXPROCS="${GOMAXPROCS:-2}"
# Built from a copy, so the build never writes into the repository.
rm -rf "$CACHE/src" && mkdir -p "$CACHE/src" && cp "$SRC/main.go" "$SRC/go.mod" "$SRC/go.sum" "$CACHE/src/"
(cd "$CACHE/src" && go build -p 2 -ldflags="-s -w" -o "$BIN/otelcol" .) >&2 \
  || { echo "install-otelcol: ERROR: go build of the collector $OTELCOL_VERSION failed (see above)" >&2; exit 1; }

"$BIN/otelcol" --version >&2
say "built the collector in $(( SECONDS - started )) s"
go_build_cache_done "otelcol $OTELCOL_VERSION built in $(( SECONDS - started )) s"
