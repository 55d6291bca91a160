#!/usr/bin/env bash
# Builds libwasithreads and the hello example, then runs a guest with four wasm threads
# (or the module given as argument).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked
# Programs linked to the library look for its SONAME, libwasithreads.so.<version>.
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
ln -sf libwasithreads.so "target/release/libwasithreads.so.$version"
mkdir -p target/demo
cc -std=c11 -Wall -Wextra -O2 -Iinclude examples-c/hello.c \
   -Ltarget/release -lwasithreads -Wl,-rpath,"$PWD/target/release" -o target/demo/hello
./target/demo/hello "$@"
