#!/usr/bin/env bash
# Runs tests under another Node release (default: the current LTS, Node 24) fetched through npm
# by test/harness/install-node.sh; the build is the same (tsc output does not depend on Node).
# Without file arguments it runs a representative set: every native or WASM dependency (chdb,
# libpg-query, tree-sitter, ssh2), both buses, the wire parsers, the CLI, and end-to-end runs
# with real psql, OpenSSH and kube-apiserver through Agate. `test/node-lts.sh --all` runs every
# test file. Prints "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=$(bash test/harness/install-node.sh) || { echo "Node could not be fetched"; exit 1; }
echo "node $("$BIN/node" --version)"
[ -d dist ] || npx tsc -p tsconfig.json || { echo "build failed"; exit 1; }
if [ "${1:-}" = "--all" ]; then
  mapfile -t files < <(find dist -name '*.test.js' | sort)
elif [ $# -gt 0 ]; then
  files=("$@")
else
  files=(
    dist/core/src/config.test.js
    dist/core/src/bus/local-bus.test.js
    dist/schemas/src/compat.test.js
    dist/services/ingress-proxy/src/pg/frontend-parser.test.js
    dist/services/ingress-proxy/src/pg/engine.test.js
    dist/services/ingress-proxy/src/k8s/upstream.test.js
    dist/services/policy/src/engine.test.js
    dist/services/ledger/src/ledger.test.js
    dist/cli/src/schema-command.test.js
    dist/test/e2e/pg-proxy.test.js
    dist/test/e2e/ssh.test.js
    dist/test/e2e/k8s.test.js
  )
fi
passed=0; failed=0; failed_files=()
for f in "${files[@]}"; do
  echo "=== ${f#dist/}"
  out=$(timeout 600 "$BIN/node" --enable-source-maps "$f" 2>&1); rc=$?
  clean=$(printf '%s\n' "$out" | sed -e 's/\x1b\[[0-9;]*m//g')
  printf '%s\n' "$clean" | grep -v '^\s*$' | tail -n 8
  ok=$(printf '%s\n' "$clean" | awk '/Passed:/ {s+=$2} END {print s+0}')
  total=$(printf '%s\n' "$clean" | awk '/Total:/ {s+=$2} END {print s+0}')
  passed=$((passed + ok)); failed=$((failed + total - ok))
  if [ $rc -ne 0 ] || [ "$total" -eq 0 ] || [ "$ok" -ne "$total" ]; then failed_files+=("$f"); [ "$total" -eq "$ok" ] && failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed (node $("$BIN/node" --version))"
[ ${#failed_files[@]} -eq 0 ] || { printf 'failed: %s\n' "${failed_files[@]}"; exit 1; }
