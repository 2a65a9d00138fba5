#!/usr/bin/env bash
# Builds helm from its Go module into a cache outside the repository, once, for the chart tests
# (helm lint / helm template). Prints the bin directory on stdout (progress goes to stderr).
# Idempotent: a finished build is marked by bin/.complete and reused.
set -euo pipefail
source "$(dirname "$0")/go-build-cache.sh"
HELM_VERSION="${AGATE_HELM_VERSION:-v4.3.2}"
go_build_cache_begin install-helm "${AGATE_CACHE:-$HOME/.cache/agate}/helm-$HELM_VERSION"
say "building helm $HELM_VERSION into $BIN; a cold build costs about 280 s of CPU, downloads included"
started=$SECONDS

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath
export GOMAXPROCS="${GOMAXPROCS:-2}"
# helm's go.mod has no replace directives, so `go install module@version` builds it as published.
# The version is stamped the way helm's Makefile does, so `helm version` tells the release.
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
GOBIN="$BIN" go install -p 2 -ldflags="$ldflags" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2 \
  || { echo "install-helm: ERROR: go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION failed (set AGATE_HELM_VERSION to try another release)" >&2; exit 1; }

"$BIN/helm" version >&2
say "built helm in $(( SECONDS - started )) s"
go_build_cache_done "$HELM_VERSION built in $(( SECONDS - started )) s"
