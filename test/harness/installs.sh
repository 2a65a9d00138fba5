# Sourced by test/run.sh: runs every harness installer in the background, as concurrently as
# their locks allow, so a cold run downloads and builds while the tests that need nothing run.
#
#   installs_start DIR   starts the installers; each one's output goes to DIR/NAME.log and its exit
#                        status to DIR/NAME.rc when it ends. DIR is removed at the end unless one
#                        failed.
#   installs_wait NAME…  returns once every NAME has finished; prints a line while it waits.
#   installs_check       fails the run now if a finished installer failed.
#   installs_stop        ends the installers still running (test/run.sh's EXIT trap).
#   installs_summary     prints each installer's wall and CPU time.
#
# A failed installer is never skipped: installs_wait and installs_check print which tool could not
# be installed and the end of its log, end the other installers and exit the run with 1.
#
# Five kinds of work compete for different things, so each kind is one background job:
#   apt      sshd, postgres, chromium, clickhouse: one after another (dpkg takes one lock).
#   python   psycopg, ocsf-validator, schemathesis: one venv each, side by side (downloads).
#   maven    keycloak, kafka, registry: one after another (one local Maven repository).
#   node     the current Node LTS, fetched through npm.
#   go       kube, otelcol, helm: one after another, under `nice`. Compiling is all CPU, so two
#            builds side by side on two cores would finish no sooner than in turn, and they share
#            compiled packages (client-go, grpc, protobuf) that a sequential build compiles once.
#            `nice` keeps the tests running beside them at full speed; kube comes first because
#            most of the files waiting for a Go tool need kube-apiserver.

INSTALLS_GO=(kube otelcol helm)
INSTALLS_FAST=(sshd postgres chromium clickhouse psycopg ocsf-validator schemathesis keycloak kafka registry node)
INSTALLS_ALL=("${INSTALLS_FAST[@]}" "${INSTALLS_GO[@]}")
INSTALLS_DIR=""
INSTALLS_PIDS=()

installs_script() {
  case "$1" in
    schemathesis) echo test/fuzz/install-schemathesis.sh ;;
    *) echo "test/harness/install-$1.sh" ;;
  esac
}

# What could not be installed, in the words of the failure message.
installs_what() {
  case "$1" in
    sshd) echo "the OpenSSH server or sshpass could not be installed" ;;
    postgres) echo "PostgreSQL 15 and pgaudit could not be installed" ;;
    chromium) echo "chromium could not be installed" ;;
    clickhouse) echo "Debian's clickhouse-server could not be installed" ;;
    psycopg) echo "psycopg could not be installed" ;;
    ocsf-validator) echo "pydantic-ocsf could not be installed" ;;
    schemathesis) echo "schemathesis could not be installed" ;;
    keycloak) echo "Keycloak could not be fetched" ;;
    kafka) echo "the Kafka broker's jars could not be fetched" ;;
    registry) echo "Apicurio Registry could not be fetched" ;;
    node) echo "the current Node LTS could not be fetched" ;;
    kube) echo "kube-apiserver, etcd or kubectl could not be built" ;;
    otelcol) echo "the OpenTelemetry Collector could not be built" ;;
    helm) echo "helm could not be built" ;;
    *) echo "$1 could not be installed" ;;
  esac
}

# installs_children_cpu PID: the CPU seconds (user + system) of PID's finished children, from
# /proc: a cold build's cost independent of how busy the machine was, which wall time is not.
installs_children_cpu() {
  local f
  read -r -a f < <(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  echo $(( (f[13] + f[14]) / $(getconf CLK_TCK) ))
}

# installs_job NICENESS NAME…: one background job running the installers NAME… in turn, each
# one's output, exit status and time recorded under INSTALLS_DIR.
installs_job() {
  local niceness="$1"
  shift
  (
    job=$BASHPID
    for name in "$@"; do
      started=$SECONDS
      cpu=$(installs_children_cpu "$job")
      nice -n "$niceness" bash "$(installs_script "$name")" >"$INSTALLS_DIR/$name.log" 2>&1
      rc=$?
      echo "$(( SECONDS - started )) s, CPU $(( $(installs_children_cpu "$job") - cpu )) s" >"$INSTALLS_DIR/$name.seconds"
      # Renamed into place, so a reader never sees a half-written status.
      echo "$rc" >"$INSTALLS_DIR/$name.rc.tmp" && mv "$INSTALLS_DIR/$name.rc.tmp" "$INSTALLS_DIR/$name.rc"
    done
  ) &
  INSTALLS_PIDS+=($!)
}

installs_start() {
  INSTALLS_DIR="$1"
  mkdir -p "$INSTALLS_DIR"
  # Job control gives each job its own process group, so installs_stop ends its children too.
  set -m
  installs_job 0 sshd postgres chromium clickhouse
  installs_job 0 psycopg
  installs_job 0 ocsf-validator
  installs_job 0 schemathesis
  installs_job 0 keycloak kafka registry
  installs_job 0 node
  installs_job 10 "${INSTALLS_GO[@]}"
  set +m
}

installs_stop() {
  local pid
  for pid in "${INSTALLS_PIDS[@]}"; do kill -- "-$pid" 2>/dev/null; done
  INSTALLS_PIDS=()
  # The logs are kept only when an installer failed (its log is named in the failure message).
  [ -n "${INSTALLS_FAILED:-}" ] || [ -z "$INSTALLS_DIR" ] || rm -rf "$INSTALLS_DIR"
}

installs_fail() {
  local name="$1"
  INSTALLS_FAILED=1
  echo "test setup failed: $(installs_what "$name") ($(installs_script "$name") exited with $(cat "$INSTALLS_DIR/$name.rc")); the end of its log, $INSTALLS_DIR/$name.log:"
  tail -n 40 "$INSTALLS_DIR/$name.log" | sed 's/^/  | /'
  installs_stop
  exit 1
}

# A finished installer's report: nothing while it runs, one line when it is done, the failure.
installs_report() {
  local name="$1"
  [ -f "$INSTALLS_DIR/$name.rc" ] || return 1
  [ -f "$INSTALLS_DIR/$name.reported" ] && return 0
  [ "$(cat "$INSTALLS_DIR/$name.rc")" -eq 0 ] || installs_fail "$name"
  touch "$INSTALLS_DIR/$name.reported"
  echo "--- installed $name ($(cat "$INSTALLS_DIR/$name.seconds"))"
}

# One line with each installer's time, to compare cold runs by.
installs_summary() {
  local name
  echo "--- installers, run side by side (wall time, CPU time):"
  for name in "${INSTALLS_ALL[@]}"; do echo "      $name: $(cat "$INSTALLS_DIR/$name.seconds" 2>/dev/null || echo 'not finished')"; done
}

installs_check() {
  local name
  for name in "${INSTALLS_ALL[@]}"; do installs_report "$name" || true; done
}

installs_wait() {
  local name waited=0
  for name in "$@"; do
    while ! installs_report "$name"; do
      # A line after 5 s and then every two minutes keeps a long cold build visibly alive in CI logs.
      if [ $(( waited % 120 )) -eq 5 ]; then
        echo "--- waiting for $name ($(installs_script "$name")): $(grep -v '^\s*$' "$INSTALLS_DIR/$name.log" 2>/dev/null | tail -n 1 | cut -c1-160)"
      fi
      installs_check
      sleep 1
      waited=$(( waited + 1 ))
    done
  done
}
