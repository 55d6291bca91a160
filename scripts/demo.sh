#!/usr/bin/env bash
# Builds libwasithreads and the hello example, then runs a guest with four wasm threads
# (or the module given as argument).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked
ln -sf libwasithreads.so target/release/libwasithreads.so.0
mkdir -p target/demo
cc -std=c11 -Wall -Wextra -O2 -Iinclude examples-c/hello.c \
   -Ltarget/release -lwasithreads -Wl,-rpath,"$PWD/target/release" -o target/demo/hello
./target/demo/hello "$@"
