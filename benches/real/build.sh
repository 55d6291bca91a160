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
#   xzmt.wasm, xzmt-native                  benches/real/xzmt.c over liblzma 5.2 (lzma-sys's
#                                           bundled xz sources), lzma_stream_encoder_mt
#   sqlsort.wasm, sqlsort-native            benches/real/sqlsort.c over SQLite 3.46.0
#                                           (libsqlite3-sys's bundled sqlite3.c), threadsafe,
#                                           sorter worker threads
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
    -Wl,--max-memory=1073741824 -Wl,-z,stack-size=1048576

echo "== zstdmt-native"
gcc -pthread $ZDEFS $ZSRC -o "$WORK/zstdmt-native"

# Links one C guest: crt1, objects, the threaded wasi-libc, then (only for what is still
# undefined) compiler-rt.
WLINK=(-Wl,--shared-memory -Wl,--import-memory -Wl,--export-memory
       -Wl,--max-memory=1073741824 -Wl,-z,stack-size=1048576)
wasm_link() { # out objs...
    local out=$1; shift
    $ZIG cc $WFLAGS -nostdlib "$SC/crt1-command.o" "$@" "$SC/libc.a" "$WORK/zigrt/libzigrt.a" -o "$out" "${WLINK[@]}"
}
# compile DIR FLAGS -- SRCS...: each source to DIR/<name>.o, nproc at a time
wasm_compile() {
    local dir=$1 flags=$2; shift 3
    rm -rf "$dir" && mkdir -p "$dir"
    local pids=() f
    for f in "$@"; do
        $ZIG cc $WFLAGS $flags -c "$f" -o "$dir/$(basename "$f" .c).o" &
        pids+=($!)
        if [ ${#pids[@]} -ge "$(nproc)" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
    done
    for f in "${pids[@]}"; do wait "$f"; done
}

echo "== compiler-rt for wasm32 (zig's, as an archive linked after libc.a)"
# -nostdlib drops zig's compiler-rt; SQLite's long double (f128 on wasm32: __multf3, ...)
# and wasi-libc's clock_nanosleep (__muloti4) need it. Its weak memcpy & co. lose to
# libc.a's, which the link pulls in first.
ZIGLIB=$(python3 -c 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "lib"))')
if [ ! -f "$WORK/zigrt/libzigrt.a" ]; then
    mkdir -p "$WORK/zigrt"
    (cd "$WORK/zigrt" && $ZIG build-obj -target wasm32-wasi -mcpu=generic+atomics+bulk_memory+mutable_globals+sign_ext \
        -OReleaseFast "$ZIGLIB/compiler_rt.zig" -femit-bin=compiler_rt.o && $ZIG ar rcs libzigrt.a compiler_rt.o)
fi

echo "== liblzma and SQLite sources (from the lzma-sys and libsqlite3-sys crates)"
mkdir -p "$WORK/cfetch/src"
cat > "$WORK/cfetch/Cargo.toml" <<'TOML'
[package]
name = "cfetch"
version = "0.1.0"
edition = "2021"
[dependencies]
lzma-sys = "=0.1.20"
libsqlite3-sys = { version = "=0.30.1", features = ["bundled"] }
[workspace]
TOML
echo 'fn main() {}' > "$WORK/cfetch/src/main.rs"
(cd "$WORK/cfetch" && cargo fetch -q)
LZ=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/lzma-sys-0.1.20 | head -1)
SQ=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/libsqlite3-sys-0.30.1/sqlite3 | head -1)
echo "   $LZ"; echo "   $SQ"

echo "== xzmt (wasm and native)"
# The file list and config.h are lzma-sys's build.rs's. WASI has no signals: wasi_signal.h
# stands in for <signal.h> (liblzma masks signals around pthread_create).
X=$LZ/xz-5.2/src
XSRC=$(for d in common lzma lz check delta rangecoder simple; do ls "$X/liblzma/$d"/*.c; done | grep -v -e _small.c -e tablegen)
XSRC="$XSRC $X/common/tuklib_cpucores.c $X/common/tuklib_physmem.c $HERE/xzmt.c"
XDEFS="-O2 -std=c99 -DHAVE_CONFIG_H=1 -I$LZ -I$X/common"
for d in api lzma lz check simple delta common rangecoder; do XDEFS="$XDEFS -I$X/liblzma/$d"; done
# shellcheck disable=SC2086
wasm_compile "$WORK/xobj" "$XDEFS -D_WASI_EMULATED_SIGNAL -include $HERE/wasi_signal.h" -- $XSRC
wasm_link "$WORK/xzmt.wasm" "$WORK"/xobj/*.o
# shellcheck disable=SC2086
gcc -pthread $XDEFS $XSRC -o "$WORK/xzmt-native"

echo "== sqlsort (wasm and native)"
# SQLite's own WASI support omits WAL and mmap; the native build gets the same options.
SDEFS="-O2 -DSQLITE_THREADSAFE=1 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_WAL -DSQLITE_MAX_MMAP_SIZE=0 -I$SQ"
wasm_compile "$WORK/sobj" "$SDEFS" -- "$SQ/sqlite3.c" "$HERE/sqlsort.c"
wasm_link "$WORK/sqlsort.wasm" "$WORK"/sobj/*.o
gcc -pthread $SDEFS "$SQ/sqlite3.c" "$HERE/sqlsort.c" -o "$WORK/sqlsort-native" -lm

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
