#!/usr/bin/env bash
# Builds everything the real-program comparison (run.sh) needs. Not run in CI.
#
#   benches/real/build.sh            # scratch space in $WORK (default /tmp/real)
#
# Needs: rustup with the wasm32-wasip1-threads target, gcc, cmake, python3 + pip
# (for PyPI's `ziglang`, whose clang/wasm-ld compile the C guest), network access to
# crates.io and PyPI on the first run. Produces in $WORK:
#   rg/bin/rg.wasm, rg-native/bin/rg        ripgrep 15.2.0, wasm and native
#   zstdmt.wasm, zstdmt-native              benches/real/zstdmt.c over libzstd 1.5.7
#                                           (zstd-sys's bundled sources), ZSTD_MULTITHREAD
#   pcsum.wasm, pcsum-native                benches/real/pcsum (Rust std::thread)
#   tree/                                   ~15k-file source tree (copy of the cargo registry sources)
#   input.tar                               50 MiB of that tree, the zstd input
# and wt-run in $REPO/target/examples-c.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/real}
mkdir -p "$WORK"

echo "== wasithreads library and wt-run"
(cd "$REPO" && CARGO_TARGET_DIR="$REPO/target" cargo build --release ${CARGO_OFFLINE:+--offline})
cmake -S "$REPO/examples-c" -B "$REPO/target/examples-c" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$REPO/target/examples-c" --target wt-run
# wt-run-cached: wt-run with WT_CWASM=file for a precompiled module (see load_cached.h).
sed 's/wt_module_load_file(engine, path, &module)/load_cached(engine, path, \&module)/' \
    "$REPO/examples-c/wt-run.c" > "$WORK/wt-run-cached.c"
grep -q load_cached "$WORK/wt-run-cached.c"
gcc -O2 -include "$HERE/load_cached.h" -I"$REPO/include" "$WORK/wt-run-cached.c" -o "$WORK/wt-run-cached" \
    -L"$REPO/target/release" -lwasithreads -Wl,-rpath,"$REPO/target/release" -pthread

rustup target add wasm32-wasip1-threads >/dev/null 2>&1 || true

echo "== ripgrep 15.2.0 (wasm32-wasip1-threads and native)"
[ -x "$WORK/rg/bin/rg.wasm" ] || cargo install ripgrep --version 15.2.0 --locked \
    --target wasm32-wasip1-threads --root "$WORK/rg"
[ -x "$WORK/rg-native/bin/rg" ] || cargo install ripgrep --version 15.2.0 --locked --root "$WORK/rg-native"

echo "== zstd sources (from the zstd-sys crate)"
mkdir -p "$WORK/zfetch/src"
cat > "$WORK/zfetch/Cargo.toml" <<'TOML'
[package]
name = "zfetch"
version = "0.1.0"
edition = "2021"
[dependencies]
zstd-sys = "=2.1.3"
[workspace]
TOML
echo 'fn main() {}' > "$WORK/zfetch/src/main.rs"
(cd "$WORK/zfetch" && cargo fetch -q)
ZLIB=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/zstd-sys-2.1.3+zstd.1.5.7/zstd/lib | head -1)
echo "   $ZLIB"

echo "== ziglang (clang + wasm-ld) from PyPI"
python3 -m ziglang version >/dev/null 2>&1 || pip install ziglang
ZIG="python3 -m ziglang"
# The threaded wasi-libc comes from Rust's wasm32-wasip1-threads sysroot (zig's own
# wasi-libc is the single-threaded one: pthread_create fails there). Headers: zig's
# wasi-libc headers, which match.
SC=$(rustc --print sysroot)/lib/rustlib/wasm32-wasip1-threads/lib/self-contained
WFLAGS="-target wasm32-wasi -mcpu=generic+atomics+bulk_memory+mutable_globals+sign_ext -pthread -D_REENTRANT"
ZDEFS="-O2 -DZSTD_MULTITHREAD -DZSTD_DISABLE_ASM -I$ZLIB -I$ZLIB/common"
ZSRC="$ZLIB/common/*.c $ZLIB/compress/*.c $ZLIB/decompress/*.c $HERE/zstdmt.c"

echo "== zstdmt.wasm"
rm -rf "$WORK/zobj" && mkdir -p "$WORK/zobj"
pids=()
for f in $ZSRC; do
    $ZIG cc $WFLAGS $ZDEFS -c "$f" -o "$WORK/zobj/$(basename "$f" .c).o" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$(nproc)" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
$ZIG cc $WFLAGS -nostdlib "$SC/crt1-command.o" "$WORK"/zobj/*.o "$SC/libc.a" -o "$WORK/zstdmt.wasm" \
    -Wl,--shared-memory -Wl,--import-memory -Wl,--export-memory \
    -Wl,--max-memory=2147483648 -Wl,-z,stack-size=1048576

echo "== zstdmt-native"
gcc -pthread $ZDEFS $ZSRC -o "$WORK/zstdmt-native"

echo "== pcsum (wasm and native)"
(cd "$HERE/pcsum" && CARGO_TARGET_DIR="$WORK/pcsum-target" cargo build -q --release --target wasm32-wasip1-threads \
    && CARGO_TARGET_DIR="$WORK/pcsum-target" cargo build -q --release)
cp "$WORK/pcsum-target/wasm32-wasip1-threads/release/pcsum.wasm" "$WORK/pcsum.wasm"
cp "$WORK/pcsum-target/release/pcsum" "$WORK/pcsum-native"

echo "== inputs"
if [ ! -d "$WORK/tree" ]; then
    mkdir -p "$WORK/tree"
    for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/*; do
        case $(basename "$d") in windows*|winapi*|linux-raw-sys*) ;; *) cp -r "$d" "$WORK/tree/" ;; esac
    done
fi
[ -f "$WORK/input.tar" ] || { tar cf - -C "$WORK" tree 2>/dev/null | head -c 52428800 > "$WORK/input.tar" || true; }
echo "tree: $(find "$WORK/tree" -type f | wc -l) files; input.tar: $(stat -c %s "$WORK/input.tar") bytes"
echo "done"
