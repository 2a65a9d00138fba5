# Sourced by the install scripts of Python tools (psycopg, pydantic-ocsf, schemathesis): one way
# to put a PyPI package into its own virtualenv in a cache directory outside the repository.
#
# python_venv_install NAME VENV PROBE PIP_SPEC
#   When VENV's python already runs PROBE (Python code, e.g. 'import psycopg'), does nothing.
#   Otherwise creates VENV afresh (an interrupted install is redone, never half-used), installs
#   PIP_SPEC into it and checks PROBE. Messages go to stderr prefixed with NAME; prints nothing.

python_venv_install() {
  local name="$1" venv="$2" probe="$3" spec="$4"
  if [[ -x "${venv}/bin/python" ]] && "${venv}/bin/python" -c "${probe}" 2>/dev/null; then return 0; fi
  local py
  py="$(command -v python3 || true)"
  [[ -n "${py}" ]] || { printf '%s: python3 is not installed (Debian: apt-get install python3 python3-venv)\n' "${name}" >&2; return 1; }
  printf '%s: creating %s with %s\n' "${name}" "${venv}" "${spec}" >&2
  mkdir -p "$(dirname "${venv}")"
  rm -rf "${venv}"
  "${py}" -m venv "${venv}" >&2 || { printf '%s: python3 -m venv failed (Debian: apt-get install python3-venv)\n' "${name}" >&2; return 1; }
  if ! "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check "${spec}" >&2 || ! "${venv}/bin/python" -c "${probe}" >&2; then
    rm -rf "${venv}"
    printf '%s: could not install %s from PyPI\n' "${name}" "${spec}" >&2
    return 1
  fi
}
