#!/usr/bin/env bash
# Agate's whole test suite: installs what the tests need, builds, then runs every *.test.js under
# dist/ in its own Node process (the embedded ClickHouse engine allows one data directory per
# process). Prints "N passed, N failed" and exits non-zero on any failure.
#
# The installers (test/harness/installs.sh) run in the background from the start: apt packages
# (OpenSSH, PostgreSQL, chromium, clickhouse-server), Python venvs (psycopg, pydantic-ocsf,
# schemathesis), Maven downloads (Keycloak, Kafka, Apicurio), Node LTS, and the Go builds of
# kube-apiserver/etcd/kubectl, the OpenTelemetry Collector and helm. The files then run in three
# rounds, so a cold machine tests while it builds:
#   1. unit files (they reach no service harness; test/unit/select.ts) run at once;
#   2. the other files that need no Go-built tool, once the apt, Python, Maven and Node installers
#      are done (a few minutes cold, while round 1 runs);
#   3. the files that need kube-apiserver, the collector or helm, each as soon as its tools are built.
# An installer that fails ends the run at once with what could not be installed and its log.
#
# Cold (every cache empty; CONTRIBUTING.md, "Tests", has the measurements): the Go builds cost
# about 980 s of CPU (kube 668, collector 120, helm 192), about 9 min on two idle cores; the apt,
# Python, Maven and Node downloads a few minutes. The whole install phase took 20 min cold at
# load 10-16 on the shared two-core machine. One after another before the suite's 20 min
# that was 35-38 min; under the unit and service files it is about 25-30 min. The run ends with
# each installer's wall and CPU time (installs_summary).
set -uo pipefail
cd "$(dirname "$0")/.."
source test/harness/installs.sh
run_started=$SECONDS
install_logs=$(mktemp -d "${TMPDIR:-/tmp}/agate-install.XXXXXX")
trap installs_stop EXIT
installs_start "$install_logs"
echo "--- installers started in the background; their logs are in $install_logs (kept if one fails)"
rm -rf dist
npx tsc -p tsconfig.json || { echo "build failed"; exit 1; }

# Each file with the services its imports reach (test/unit/run.ts --needs).
needs_out=$(node dist/test/unit/run.js --needs) || { echo "could not list the test files' services (node dist/test/unit/run.js --needs)"; exit 1; }
unit_files=(); service_files=(); go_files=()
declare -A go_tools_of
while IFS=$'\t' read -r file services; do
  [ -n "$file" ] || continue
  tools=""
  for s in $services; do
    case "$s" in
      test/harness/kube-apiserver.js) tools="$tools kube" ;;
      test/harness/otelcol.js) tools="$tools otelcol" ;;
      test/harness/helm.js) tools="$tools helm" ;;
    esac
  done
  if [ -n "$tools" ]; then go_files+=("dist/$file"); go_tools_of["dist/$file"]="$tools"
  elif [ -n "$services" ]; then service_files+=("dist/$file")
  else unit_files+=("dist/$file"); fi
done <<<"$needs_out"
[ $(( ${#unit_files[@]} + ${#service_files[@]} + ${#go_files[@]} )) -gt 0 ] || { echo "no test files found"; exit 1; }

passed=0
failed=0
failed_files=()
run_file() {
  local f="$1" out rc total ok bad
  installs_check
  echo "=== ${f#dist/}"
  out=$(timeout 600 node --enable-source-maps "$f" 2>&1)
  rc=$?
  printf '%s\n' "$out" | sed -e 's/\x1b\[[0-9;]*m//g' | grep -v '^\s*$' | tail -n 40
  total=$(printf '%s\n' "$out" | sed -e 's/\x1b\[[0-9;]*m//g' | awk '/Total:/ {s+=$2} END {print s+0}')
  ok=$(printf '%s\n' "$out" | sed -e 's/\x1b\[[0-9;]*m//g' | awk '/Passed:/ {s+=$2} END {print s+0}')
  passed=$((passed + ok))
  bad=$((total - ok))
  # A file that failed without counting a failure, or ran no test at all (a suite's .run() left
  # out prints nothing and exits 0), counts as one failure (test/unit/file-result.ts).
  if [ "$total" -eq 0 ] && [ "$rc" -eq 0 ]; then echo "(it ran no test: is a suite's .run() missing?)"; fi
  if { [ "$rc" -ne 0 ] || [ "$total" -eq 0 ]; } && [ "$bad" -eq 0 ]; then bad=1; fi
  if [ "$bad" -gt 0 ]; then failed=$((failed + bad)); failed_files+=("${f#dist/}"); fi
}

echo "--- round 1: ${#unit_files[@]} unit files"
for f in "${unit_files[@]}"; do run_file "$f"; done
installs_wait "${INSTALLS_FAST[@]}"
echo "--- round 2: ${#service_files[@]} files with services, no Go-built tool"
for f in "${service_files[@]}"; do run_file "$f"; done
# Round 3 follows the build order (kube, otelcol, helm): after each tool is built, the files whose
# tools are all built by then.
echo "--- round 3: ${#go_files[@]} files needing kube-apiserver, the OpenTelemetry Collector or helm"
built=" "
declare -A done_files
for tool in "${INSTALLS_GO[@]}"; do
  installs_wait "$tool"
  built="$built$tool "
  for f in "${go_files[@]}"; do
    [ -z "${done_files[$f]:-}" ] || continue
    ready=1
    for t in ${go_tools_of[$f]}; do [[ "$built" == *" $t "* ]] || ready=0; done
    [ "$ready" -eq 1 ] || continue
    done_files[$f]=1
    run_file "$f"
  done
done
installs_wait "${INSTALLS_ALL[@]}"

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
installs_summary
echo "--- the whole run took $(( (SECONDS - run_started) / 60 )) min $(( (SECONDS - run_started) % 60 )) s"
[ "${#failed_files[@]}" -eq 0 ] || printf 'FAILED: %s\n' "${failed_files[@]}"
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
