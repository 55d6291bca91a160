#!/usr/bin/env bash
# Tests the Python binding the way users install it: a fresh venv, `pip install
# ./bindings/python` (cargo reuses the repository's target dir and release profile, so
# after `cargo test --release` / `cargo build --release` nothing is recompiled), then
# ruff (package and tests) and `mypy --strict` (package) over the sources, configured in
# pyproject.toml, then pytest against the installed package and the library inside it.
#
#   bash bindings/python/test.sh [pytest arguments...]
#
# Environment:
#   CARGO_TARGET_DIR     cargo's target dir (default: <repo>/target), passed on to cargo
#   WASITHREADS_PY_VENV  where to create the venv (default: <target dir>/python-venv;
#                        recreated on every run)
#   PYTHON               the interpreter to create the venv with (default: python3, >= 3.9)
#   WASITHREADS_LIB      if set, the tests load that library instead of the packaged one
#
# On Debian, `python3 -m venv` needs the python3-venv package; as root this installs it
# with apt-get when it is missing (like scripts/setup.sh does for other tools).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
venv=${WASITHREADS_PY_VENV:-$target/python-venv}
python=${PYTHON:-python3}
start=$SECONDS

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || { echo "test.sh: $python is older than 3.9" >&2; exit 1; }

rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        pkg="python$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
        echo "test.sh: installing $pkg for python -m venv" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "$pkg" >/dev/null || apt-get install -y -qq python3-venv >/dev/null
        "$python" -m venv "$venv"
    else
        echo "test.sh: '$python -m venv' failed; install python3-venv" >&2
        exit 1
    fi
fi

echo "test.sh: pip install $here (cargo target dir: $target)"
# pip passes the environment to the build backend; CARGO_TARGET_DIR, if set, reaches cargo.
"$venv/bin/python" -m pip install --disable-pip-version-check -q "$here[test,lint]"

(cd "$here" && "$venv/bin/ruff" check --no-cache . && "$venv/bin/mypy" --cache-dir "$venv/mypy-cache")

# Run from outside the source tree so that `import wasithreads` is the installed package.
cd "$venv"
"$venv/bin/python" - <<'PY'
import os, sys, wasithreads
installed = os.path.dirname(wasithreads.__file__)
assert installed.startswith(sys.prefix), f"wasithreads imported from {installed}, not the venv"
print(f"test.sh: wasithreads {wasithreads.__version__} from {installed}, library {wasithreads.library_path()}")
PY
"$venv/bin/python" -m pytest -p no:cacheprovider -q "$here/tests" "$@"
echo "test.sh: done in $((SECONDS - start)) s"
