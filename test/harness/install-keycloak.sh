#!/usr/bin/env bash
# Installs Keycloak (the Quarkus distribution, a real OIDC and SAML identity provider for the
# console's sign-in tests) from Maven Central into a cache outside the repository, once. It runs on
# the Temurin 25 JDK under /usr/lib/jvm. Prints the directory holding bin/kc.sh.
set -euo pipefail
VERSION="${AGATE_KEYCLOAK_VERSION:-26.5.6}"
CACHE="${AGATE_CACHE:-$HOME/.cache/agate}/keycloak"
DIR="$CACHE/$VERSION"
if [ -x "$DIR/bin/kc.sh" ]; then echo "$DIR"; exit 0; fi
command -v mvn >/dev/null || { echo "install-keycloak: ERROR: mvn (Maven) is required" >&2; exit 1; }
command -v unzip >/dev/null || { echo "install-keycloak: ERROR: unzip is required" >&2; exit 1; }
mkdir -p "$CACHE"
echo "install-keycloak: fetching org.keycloak:keycloak-quarkus-dist:$VERSION (about 200 MB)" >&2
if ! mvn -q -B dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:zip" -DoutputDirectory="$CACHE" >&2; then
  echo "install-keycloak: ERROR: Maven could not fetch keycloak-quarkus-dist $VERSION" >&2
  exit 1
fi
rm -rf "$DIR.partial"
mkdir -p "$DIR.partial"
unzip -q "$CACHE/keycloak-quarkus-dist-$VERSION.zip" -d "$DIR.partial"
# The zip holds one folder, keycloak-VERSION/; the cache keeps its contents under VERSION/.
mv "$DIR.partial/keycloak-$VERSION" "$DIR"
rmdir "$DIR.partial"
rm -f "$CACHE/keycloak-quarkus-dist-$VERSION.zip"
echo "$DIR"
