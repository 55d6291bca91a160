#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests, the C API tests against the committed
# header, and the Rust std::thread guest (which needs the wasm32-wasip1-threads target).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1-threads >/dev/null 2>&1 || rustup target add wasm32-wasip1-threads
cargo test --release --locked
