#!/usr/bin/env bash
# Runs every test: the check of the layer map in src/lib.rs (scripts/check-layers.py),
# the commit-subject check (scripts/check-commits.sh), rustfmt (`cargo fmt --check`),
# clippy with the lint list in Cargo.toml,
# the Rust unit and integration tests (which include the C and C++ API tests against the
# committed header, the Rust std::thread guests, wt-run as a cargo runner and the Python
# ctypes test), the examples-c CMake project's CTest tests, the README's build-tree
# `cc` line and an install into a temporary prefix used through pkg-config and
# find_package (scripts/check-install.sh), the Go and Python bindings' tests
# (bindings/go/test.sh installs Go when missing; bindings/python/test.sh pip-installs the
# package into a venv, reusing this target dir), and the release tarball and wheel
# installed as a user would (scripts/check-dist.sh).
# One cargo profile (release) and one target dir serve all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 scripts/check-layers.py
bash scripts/check-commits.sh
cargo fmt --all --check
cargo clippy --release --locked --all-targets -- -D warnings
cargo test --release --locked
cmake -S examples-c -B target/examples-c >/dev/null
cmake --build target/examples-c
ctest --test-dir target/examples-c --output-on-failure
bash bindings/go/test.sh target/release
bash scripts/check-install.sh
bash bindings/python/test.sh
# After the Python tests, which make sure `python3 -m venv` works.
bash scripts/check-dist.sh
