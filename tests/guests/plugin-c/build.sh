#!/usr/bin/env bash
# Builds plugin.c into a threaded WASI reactor module:
#
#   tests/guests/plugin-c/build.sh OUT.wasm
#
# tests/common/plugin.rs runs it (and caches OUT under target/guests). Compiler: PyPI's
# ziglang (clang + wasm-ld; scripts/setup.sh installs it) with zig's wasi-libc headers;
# libc: the threaded wasi-libc of Rust's wasm32-wasip1-threads target (zig's own wasi-libc
# is single-threaded), as in benches/real/build.sh, but with crt1-reactor.o instead of
# crt1-command.o. Link flags: what a threaded reactor needs (shared memory imported as
# env.memory with a maximum, exported too; `_initialize` as the entry, which clang's
# -mexec-model=reactor asks wasm-ld for) and malloc/free exported for the host.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
sc=$(rustc --print sysroot)/lib/rustlib/wasm32-wasip1-threads/lib/self-contained
[ -f "$sc/crt1-reactor.o" ] || { echo "no $sc/crt1-reactor.o: rustup target add wasm32-wasip1-threads" >&2; exit 1; }
zig=(python3 -m ziglang)
flags=(-target wasm32-wasi -mcpu=generic+atomics+bulk_memory+mutable_globals+sign_ext -pthread -D_REENTRANT)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${zig[@]}" cc "${flags[@]}" -O2 -Wall -Wextra -Werror -c "$here/plugin.c" -o "$tmp/plugin.o"
"${zig[@]}" cc "${flags[@]}" -mexec-model=reactor -nostdlib "$sc/crt1-reactor.o" "$tmp/plugin.o" "$sc/libc.a" \
    -o "$tmp/plugin.wasm" \
    -Wl,--shared-memory -Wl,--import-memory -Wl,--export-memory -Wl,--max-memory=1073741824 \
    -Wl,-z,stack-size=1048576 -Wl,--export=malloc -Wl,--export=free
mv "$tmp/plugin.wasm" "$out"
