# Sourced by the install scripts of tools built from Go modules (kube-apiserver and etcd, helm):
# one way to build once into a cache directory outside the repository.
#
# go_build_cache_begin NAME CACHE
#   Sets BIN=CACHE/bin and defines `say` (timestamped progress on stderr, prefixed with NAME).
#   When BIN/.complete exists (a finished build), prints BIN and exits the script with 0.
#   Otherwise takes CACHE/.lock (a second caller waits for the first build instead of racing
#   it, then reuses it), checks that the Go toolchain is there, and returns to build.
# go_build_cache_done SUMMARY
#   Marks the build finished (BIN/.complete holds SUMMARY) and prints BIN.

go_build_cache_begin() {
  GO_BUILD_NAME="$1"
  BIN="$2/bin"
  say() { echo "${GO_BUILD_NAME}: $(date -u +%H:%M:%S) $*" >&2; }
  if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi
  mkdir -p "$2"
  exec 9>"$2/.lock"
  if ! flock -n 9; then
    say "another build into $2 is running; waiting for it"
    flock 9
  fi
  if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi
  command -v go >/dev/null || { echo "${GO_BUILD_NAME}: ERROR: the Go toolchain (go) is required" >&2; exit 1; }
  mkdir -p "$BIN"
}

go_build_cache_done() {
  echo "$1" > "$BIN/.complete"
  echo "$BIN"
}
