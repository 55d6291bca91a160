#!/usr/bin/env bash
# Builds libwasithreads and the hello example, then runs a guest with four wasm threads
# (or the module given as argument).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# cargo build --release, plus the SONAME link the program looks for at run time.
libdir=$(bash scripts/build.sh)
mkdir -p target/demo
cc -std=c11 -Wall -Wextra -O2 -Iinclude examples-c/hello.c \
   -L"$libdir" -lwasithreads -Wl,-rpath,"$libdir" -o target/demo/hello
./target/demo/hello "$@"
