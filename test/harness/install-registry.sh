#!/usr/bin/env bash
# Installs Apicurio Registry (Confluent-compatible API at /apis/ccompat/v7) from Maven Central into
# a cache outside the repository, once. Prints the directory holding quarkus-run.jar.
set -euo pipefail
VERSION="${AGATE_APICURIO_VERSION:-3.3.3}"
CACHE="${AGATE_CACHE:-$HOME/.cache/agate}/apicurio"
DIR="$CACHE/$VERSION"
if [ -f "$DIR/quarkus-run.jar" ]; then echo "$DIR"; exit 0; fi
command -v mvn >/dev/null || { echo "install-registry: ERROR: mvn (Maven) is required" >&2; exit 1; }
mkdir -p "$CACHE"
echo "install-registry: fetching io.apicurio:apicurio-registry-app:$VERSION" >&2
if ! mvn -q -B dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all" -DoutputDirectory="$CACHE" >&2; then
  echo "install-registry: ERROR: Maven could not fetch apicurio-registry-app $VERSION" >&2
  exit 1
fi
mkdir -p "$DIR.partial"
tar xzf "$CACHE/apicurio-registry-app-$VERSION-all.tar.gz" -C "$DIR.partial"
mv "$DIR.partial" "$DIR"
echo "$DIR"
