#!/usr/bin/env bash
# Runs schemathesis against a running Agate query API, driven by the API's own OpenAPI document.
# Usage: test/fuzz/run-schemathesis.sh BASE_URL TOKEN [extra st options...]
# Installs schemathesis on first use (test/fuzz/install-schemathesis.sh). Exit status is st's.
set -euo pipefail
base="${1:?BASE_URL, e.g. http://127.0.0.1:7480}"
token="${2:?an OIDC bearer token for the query API}"
shift 2
st="$(bash "$(dirname "$0")/install-schemathesis.sh" | tail -n 1)"
# Keep the fuzzer's example database out of the repository.
cd "${TMPDIR:-/tmp}"
exec "$st" run "$base/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks "${AGATE_FUZZ_CHECKS:-not_a_server_error}" \
  --max-examples "${AGATE_FUZZ_EXAMPLES:-60}" \
  --generation-database none \
  --no-color \
  "$@"
