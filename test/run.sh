#!/usr/bin/env bash
# Agate's whole test suite: installs what the tests need (PostgreSQL, psycopg, pydantic-ocsf), builds, then runs every
# *.test.js under dist/ in its own Node process (the embedded ClickHouse engine allows one data
# directory per process). Prints "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

bash test/harness/install-sshd.sh >/dev/null || { echo "test setup failed: OpenSSH server or sshpass could not be installed"; exit 1; }
bash test/harness/install-postgres.sh || { echo "test setup failed: PostgreSQL could not be installed"; exit 1; }
# psycopg 3, the second driver the end-to-end suite drives, goes into a venv in a cache directory.
bash test/harness/install-psycopg.sh >/dev/null || { echo "test setup failed: psycopg could not be installed"; exit 1; }
# pydantic-ocsf (the OCSF 1.3.0 models the conformance tests validate against), into its own venv.
bash test/harness/install-ocsf-validator.sh >/dev/null || { echo "test setup failed: pydantic-ocsf could not be installed"; exit 1; }
# kube-apiserver, etcd and kubectl are built from Go modules into ~/.cache/agate/kube-VERSION (10-25 min
# cold, progress on stderr) here rather than in the first test that needs them, whose per-file timeout
# is 10 minutes.
bash test/harness/install-kube.sh >/dev/null || { echo "test setup failed: kube-apiserver, etcd or kubectl could not be built"; exit 1; }
# helm, for the chart tests (test/deploy/helm-chart.test.ts), is built the same way into
# ~/.cache/agate/helm-VERSION (about 12 minutes cold on 2 busy cores).
bash test/harness/install-helm.sh >/dev/null || { echo "test setup failed: helm could not be built"; exit 1; }
# An OpenTelemetry Collector (OTLP receiver, debug exporter) for the trace export tests
# (test/e2e/tracing*.test.ts), built the same way into ~/.cache/agate/otelcol-VERSION (about 21
# minutes cold, modules downloaded, on 2 busy cores; seconds once cached).
bash test/harness/install-otelcol.sh >/dev/null || { echo "test setup failed: the OpenTelemetry Collector could not be built"; exit 1; }
# The console's end-to-end test signs in through a real Keycloak (Maven Central, into ~/.cache/agate)
# in Debian's chromium.
bash test/harness/install-keycloak.sh >/dev/null || { echo "test setup failed: Keycloak could not be installed"; exit 1; }
bash test/harness/install-chromium.sh >/dev/null || { echo "test setup failed: chromium could not be installed"; exit 1; }
rm -rf dist
npx tsc -p tsconfig.json || { echo "build failed"; exit 1; }

passed=0
failed=0
failed_files=()
mapfile -t files < <(find dist -name '*.test.js' | sort)
[ "${#files[@]}" -gt 0 ] || { echo "no test files found"; exit 1; }
for f in "${files[@]}"; do
  echo "=== ${f#dist/}"
  out=$(timeout 600 node --enable-source-maps "$f" 2>&1)
  rc=$?
  printf '%s\n' "$out" | sed -e 's/\x1b\[[0-9;]*m//g' | grep -v '^\s*$' | tail -n 40
  total=$(printf '%s\n' "$out" | sed -e 's/\x1b\[[0-9;]*m//g' | awk '/Total:/ {s+=$2} END {print s+0}')
  ok=$(printf '%s\n' "$out" | sed -e 's/\x1b\[[0-9;]*m//g' | awk '/Passed:/ {s+=$2} END {print s+0}')
  passed=$((passed + ok))
  bad=$((total - ok))
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  if [ "$bad" -gt 0 ]; then failed=$((failed + bad)); failed_files+=("${f#dist/}"); fi
done

# The current Node LTS (24, fetched through npm by test/harness/install-node.sh) runs a
# representative set of the same files: native and WASM dependencies, both buses, parsers, the
# CLI, and end-to-end runs through Agate with psql, OpenSSH and kube-apiserver (test/node-lts.sh).
echo "=== the same build under the current Node LTS (test/node-lts.sh)"
lts_out=$(bash test/node-lts.sh 2>&1)
lts_rc=$?
printf '%s\n' "$lts_out" | grep -E '^(node v|=== |[0-9]+ passed|failed:)' | tail -n 20
lts_passed=$(printf '%s\n' "$lts_out" | awk '/ passed, / {n=$1} END {print n+0}')
passed=$((passed + lts_passed))
if [ "$lts_rc" -ne 0 ]; then failed=$((failed + 1)); failed_files+=("test/node-lts.sh (current Node LTS)"); fi

echo
[ "${#failed_files[@]}" -eq 0 ] || printf 'FAILED: %s\n' "${failed_files[@]}"
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
