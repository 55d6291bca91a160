#!/usr/bin/env bash
# Installs what the build and tests need beyond the Rust toolchain: the
# wasm32-wasip1-threads target (for the Rust guests), rustfmt and clippy, cmake, pkg-config, a C/C++
# compiler, readelf and valgrind (Debian packages) when they are missing, and PyPI's ziglang
# (clang and wasm-ld for the C guests: tests/guests/plugin-c, tests/common/c_guest.rs)
# unless `python3 -m ziglang` or $WT_ZIG already works.
set -euo pipefail
rustup target list --installed | grep -qx wasm32-wasip1-threads || rustup target add wasm32-wasip1-threads
# scripts/test.sh checks formatting and lints.
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v cc >/dev/null || missing+=(gcc)
command -v c++ >/dev/null || missing+=(g++)
command -v readelf >/dev/null || missing+=(binutils)
command -v python3 >/dev/null || missing+=(python3)
command -v valgrind >/dev/null || missing+=(valgrind)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: please install: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# A Debian python3 refuses a plain `pip install` (PEP 668): then with
# --break-system-packages, as for a tool.
if [ -z "${WT_ZIG:-}" ] && ! python3 -m ziglang version >/dev/null 2>&1; then
    python3 -m pip install --disable-pip-version-check -q ziglang==0.17.1 2>/dev/null ||
        python3 -m pip install --disable-pip-version-check -q --break-system-packages ziglang==0.17.1
fi
