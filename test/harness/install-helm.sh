#!/usr/bin/env bash
# Builds helm from its Go module into a cache outside the repository, once, for the chart tests
# (helm lint / helm template). Prints the bin directory on stdout (progress goes to stderr).
# Idempotent: a finished build is marked by bin/.complete and reused.
set -euo pipefail
HELM_VERSION="${AGATE_HELM_VERSION:-v4.3.2}"
CACHE="${AGATE_CACHE:-$HOME/.cache/agate}/helm-$HELM_VERSION"
BIN="$CACHE/bin"

if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi
mkdir -p "$CACHE"
# Two test processes may ask at once: the second waits for the first build instead of racing it.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  echo "install-helm: $(date -u +%H:%M:%S) another build of helm $HELM_VERSION is running; waiting for it" >&2
  flock 9
fi
if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi
command -v go >/dev/null || { echo "install-helm: ERROR: the Go toolchain (go) is required" >&2; exit 1; }

say() { echo "install-helm: $(date -u +%H:%M:%S) $*" >&2; }
say "building helm $HELM_VERSION into $BIN; a cold build takes several minutes"
started=$SECONDS

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath
export GOMAXPROCS="${GOMAXPROCS:-2}"
mkdir -p "$BIN"
# helm's go.mod has no replace directives, so `go install module@version` builds it as published.
# The version is stamped the way helm's Makefile does, so `helm version` tells the release.
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
GOBIN="$BIN" go install -p 2 -ldflags="$ldflags" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2 \
  || { echo "install-helm: ERROR: go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION failed (set AGATE_HELM_VERSION to try another release)" >&2; exit 1; }

"$BIN/helm" version >&2
echo "$HELM_VERSION built in $(( SECONDS - started )) s" > "$BIN/.complete"
say "built helm in $(( SECONDS - started )) s"
echo "$BIN"
