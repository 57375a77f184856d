# shellcheck shell=bash
# Shared set-up for scripts/test, scripts/run, scripts/soak, scripts/container-check and
# bench/run. Sourced, not executed; the caller has already done `set -euo pipefail` and
# changed to the repository root.
#
#   ensure_venv LOCK [LOCK...] create or reuse $VENV_DIR (default .venv), install the locks
#                              (with hashes, one pip call) + the project
#   ensure_command CMD [PKG]   make sure CMD is on PATH (apt-get install PKG when root)
#   ensure_redis_server_binary ensure_command redis-server
#
# The venv is reused as long as its stamp ($VENV_DIR/.stamp-<first lock>.sha256) matches the
# sha256 of the locks and of pyproject.toml; otherwise the locks are installed again (pip
# leaves what is already at the pinned version alone, so this is quick) and the stamp
# rewritten.

VENV_DIR="${VENV_DIR:-.venv}"
MIN_PYTHON="3.11"

_venv_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

_venv_python_ok() {
  # True when $1 runs and is at least MIN_PYTHON.
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

_venv_create() {
  local base
  base="$(command -v python3 || true)"
  if [[ -z "$base" ]] || ! _venv_python_ok "$base"; then
    _venv_log "error: python3 >= $MIN_PYTHON is required to create $VENV_DIR (found: ${base:-none})"
    return 1
  fi
  _venv_log "creating $VENV_DIR with $base ($("$base" -V 2>&1))"
  if ! "$base" -m venv --clear "$VENV_DIR"; then
    # Debian's python3 needs python3-venv for ensurepip.
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
      _venv_log "python3 -m venv failed; installing python3-venv with apt-get"
      _apt_install python3-venv
      "$base" -m venv --clear "$VENV_DIR"
    else
      _venv_log "error: '$base -m venv' failed (on Debian: apt-get install python3-venv)"
      return 1
    fi
  fi
}

_venv_pip() {
  # pip with its own progress, so a first install is not half a minute of silence. On a
  # terminal: pip's normal output and progress bars. Elsewhere (CI logs): no bars, and no
  # "Requirement already satisfied" line per package. Either way minus the two warnings per
  # package about --extra-index-url / --find-links entries of a machine's pip configuration
  # that do not exist there.
  local python="$VENV_DIR/bin/python" status=0
  if [[ -t 2 ]]; then
    "$python" -m pip "$@" --disable-pip-version-check >&2 2> >(_venv_pip_filter >&2) ||
      status=$?
    [[ -n "${!:-}" ]] && { wait "$!" 2>/dev/null || true; }  # the filter's last lines first
    return "$status"
  fi
  "$python" -m pip "$@" --disable-pip-version-check --progress-bar off 2>&1 |
    _venv_pip_filter -e '^Requirement already satisfied: ' >&2
  return "${PIPESTATUS[0]}"
}

_venv_pip_filter() {
  grep --line-buffered -v -e 'is ignored: it is neither a file nor a directory' \
    -e 'is ignored: it is either a non-existing path' "$@" || true
}

_venv_stamp_value() {
  sha256sum "$@" pyproject.toml | sha256sum | cut -d' ' -f1
}

ensure_venv() {
  local lock="$1" file requirements=()
  for file in "$@"; do
    if [[ ! -f "$file" ]]; then
      _venv_log "error: lock file $file not found (run from the repository root)"
      return 1
    fi
    requirements+=(-r "$file")
  done
  if [[ ! -x "$VENV_DIR/bin/python" ]] || ! _venv_python_ok "$VENV_DIR/bin/python"; then
    _venv_create
  fi
  local stamp="$VENV_DIR/.stamp-${lock##*/}.sha256" want
  want="$(_venv_stamp_value "$@")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  # Two scripts set up at once (scripts/test beside scripts/run) must not pip into one venv
  # together: serialise on a lock file inside the venv.
  exec 9>"$VENV_DIR/.install.lock"
  flock 9 2>/dev/null || true
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exec 9>&-
    return 0
  fi
  _venv_log "installing $* into $VENV_DIR (a lock or pyproject.toml changed, or a new venv);" \
    "pip's progress follows"
  local started="$SECONDS"
  if ! _venv_pip install --require-hashes "${requirements[@]}"; then
    _venv_log "error: pip install --require-hashes ${requirements[*]} failed (see pip's message above)"
    return 1
  fi
  if ! _venv_pip install --no-deps -e .; then
    _venv_log "error: pip install --no-deps -e . failed (see pip's message above)"
    return 1
  fi
  _venv_log "installed $* into $VENV_DIR in $((SECONDS - started)) s"
  printf '%s\n' "$want" >"$stamp.tmp"
  mv -f "$stamp.tmp" "$stamp"
  exec 9>&-
}

_apt_updated=""
_apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z "$_apt_updated" ]]; then
    apt-get update -q >/dev/null
    _apt_updated=1
  fi
  apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

ensure_command() {
  local command="$1" package="${2:-$1}"
  if command -v "$command" >/dev/null; then
    return 0
  fi
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
    _venv_log "$command not found; installing $package with apt-get"
    # Keep a package's init script from starting a system-wide server (redis-server on
    # 6379): the tests start their own on free ports, and scripts/run starts one with the
    # project's settings.
    local policy=/usr/sbin/policy-rc.d added_policy=""
    if [[ ! -e "$policy" ]]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
    fi
    _apt_install "$package" || true
    [[ -n "$added_policy" ]] && rm -f "$policy"
    command -v "$command" >/dev/null && return 0
  fi
  _venv_log "error: $command is not on PATH; install it (Debian/Ubuntu: apt-get install $package)"
  return 1
}

ensure_redis_server_binary() {
  ensure_command redis-server
}
