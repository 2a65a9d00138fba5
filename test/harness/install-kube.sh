#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from Go modules into a cache outside the repository, once.
# Prints the bin directory on stdout (progress goes to stderr). Idempotent: a finished build is
# marked by bin/.complete and reused.
#
# k8s.io/kubernetes cannot be `go install`ed directly: its go.mod replaces every k8s.io/* staging
# module by a ./staging/... path, which only works inside its own repository. So this writes a
# throw-away wrapper module in the cache that requires k8s.io/kubernetes and points each staging
# module at its published v0.<minor>.<patch> release instead. etcd's own main lives in a module with
# replace directives too, so the wrapper carries a three-line main that calls etcdmain.Main, at the
# etcd server version Kubernetes itself pins (same module graph, shared compiled dependencies).
set -euo pipefail
source "$(dirname "$0")/go-build-cache.sh"
KUBE_VERSION="${AGATE_KUBE_VERSION:-v1.37.2}"
CACHE="${AGATE_CACHE:-$HOME/.cache/agate}/kube-$KUBE_VERSION"
SRC="$CACHE/src"
go_build_cache_begin install-kube "$CACHE"
say "building Kubernetes $KUBE_VERSION (kube-apiserver, kubectl) and etcd into $BIN; a cold build costs about 670 s of CPU, downloads included"

# The build's own environment: no cgo, modules resolved freely, outputs reproducible and small.
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
export GOMAXPROCS="${GOMAXPROCS:-2}"

rm -rf "$SRC"
mkdir -p "$SRC/etcd" "$BIN"
cd "$SRC"

# Kubernetes' own go.mod: where its staging replaces are listed.
kube_mod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
[ -f "$kube_mod" ] || { echo "install-kube: ERROR: could not fetch k8s.io/kubernetes@$KUBE_VERSION" >&2; exit 1; }
staging_version="v0.${KUBE_VERSION#v1.}"
etcd_version=$(sed -n 's/^\s*go.etcd.io\/etcd\/server\/v3 \(v[^ ]*\).*/\1/p' "$kube_mod" | head -n1)
[ -n "$etcd_version" ] || etcd_version="${AGATE_ETCD_VERSION:-v3.6.16}"
go_version=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$kube_mod")

{
  echo "module agate.local/kube-build"
  echo
  echo "go $go_version"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes $KUBE_VERSION"
  echo "	go.etcd.io/etcd/server/v3 $etcd_version"
  echo ")"
  echo
  echo "replace ("
  # Each `k8s.io/x => ./staging/src/k8s.io/x` becomes `k8s.io/x => k8s.io/x v0.Y.Z`.
  sed -n 's#^\s*\(k8s\.io/[^ ]*\) => \./staging/.*#\t\1 => \1 '"$staging_version"'#p' "$kube_mod"
  echo ")"
} > go.mod

cat > etcd/main.go <<'GO'
// etcd's server binary, built through the wrapper module (see install-kube.sh).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO

cat > tools.go <<'GO'
//go:build tools

// Keeps the built commands in the module graph for `go mod tidy`.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO

say "resolving modules (Kubernetes $KUBE_VERSION, staging $staging_version, etcd $etcd_version)"
go mod tidy >&2

# Stamp the release into the binaries, as Kubernetes' own build does, so /version and `kubectl version`
# tell the real version instead of v0.0.0-master.
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

# One `go build` for the three commands: a single action graph compiles each shared package once
# and keeps both cores busy (links included), where three builds in turn each end on a lone link.
say "go build etcd, kube-apiserver, kubectl"
started=$SECONDS
# A heartbeat, so a long compile is visibly alive in CI logs.
( while sleep 60; do say "  still compiling ($(( (SECONDS - started) / 60 )) min)"; done ) >&2 &
beat=$!
rm -rf "$CACHE/bin.tmp" && mkdir -p "$CACHE/bin.tmp"
if ! go build -p 2 -trimpath -ldflags="$ldflags" -o "$CACHE/bin.tmp/" ./etcd k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl >&2; then
  kill "$beat" 2>/dev/null
  echo "install-kube: ERROR: go build of etcd, kube-apiserver and kubectl failed (Kubernetes $KUBE_VERSION; set AGATE_KUBE_VERSION to try another release)" >&2
  exit 1
fi
kill "$beat" 2>/dev/null
for out in etcd kube-apiserver kubectl; do
  [ -x "$CACHE/bin.tmp/$out" ] || { echo "install-kube: ERROR: go build wrote no $out" >&2; exit 1; }
  mv "$CACHE/bin.tmp/$out" "$BIN/$out"
done
rmdir "$CACHE/bin.tmp"
say "built etcd, kube-apiserver and kubectl in $(( SECONDS - started )) s"

"$BIN/kube-apiserver" --version >&2
"$BIN/kubectl" version --client >&2
"$BIN/etcd" --version >&2
say "done"
go_build_cache_done "$KUBE_VERSION etcd $etcd_version"
