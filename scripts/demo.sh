#!/usr/bin/env bash
# Builds libwasithreads and the hello example, then runs a guest with four wasm threads.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
mkdir -p target/demo
cc -std=c11 -Wall -Wextra -O2 -Iinclude examples-c/hello.c \
   -Ltarget/release -lwasithreads -Wl,-rpath,"$PWD/target/release" -o target/demo/hello
./target/demo/hello "$@"
