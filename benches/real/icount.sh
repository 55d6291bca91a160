#!/usr/bin/env bash
# Instructions executed (valgrind's "I refs", whole process, every thread) by the
# CPU-bound C rows, wasithreads vs the Wasmtime CLI, both running modules compiled ahead of
# time. Unlike CPU time this does not move with other load on the host, so it can tell a
# 3% difference apart on a busy machine (instructions are not time: a spill reload costs
# less than a multiply). Run build.sh first; needs valgrind. Not run in CI.
#
#   WASMTIME=/path/to/wasmtime-46/wasmtime benches/real/icount.sh [FILTER]
#
# Modules are compiled under valgrind too, so that both are built for the CPU features
# valgrind reports (no AVX-512), and the run then executes the same code as compiled.
# Inputs: the first 10 MiB of input.tar for compression (valgrind runs ~50x slower).
set -uo pipefail
WORK=${WORK:-/tmp/real}
FILTER=${1:-.}
WASMTIME=${WASMTIME:-/tmp/wasmtime46/wasmtime_cli/wasmtime}
WTCACHED=${WTCACHED:-$WORK/wt-run-cached}
V=$WORK/icount; rm -rf "$V"; mkdir -p "$V/io"
head -c 10485760 "$WORK/input.tar" > "$V/io/in10.tar"
"$WORK/zstdmt-native" -L 6 "$V/io/in10.tar" "$V/io/ref.zst" 2>/dev/null
"$WORK/xzmt-native" -L 2 "$V/io/in10.tar" "$V/io/ref.xz" 2>/dev/null
VG=(valgrind --tool=cachegrind --cache-sim=no --smc-check=all-non-file --trace-children=yes
    --cachegrind-out-file=/dev/null)
# name|module|args (IO = the preopened dir)
ROWS=(
  "zstd -L6 compress -T 1|zstdmt|-T 1 -L 6 IO/in10.tar IO/out"
  "zstd -L6 compress -T 0|zstdmt|-T 0 -L 6 IO/in10.tar IO/out"
  "zstd decompress|zstdmt|-d IO/ref.zst IO/out"
  "xz -L2 compress -T 1|xzmt|-T 1 -L 2 IO/in10.tar IO/out"
  "xz decompress|xzmt|-d IO/ref.xz IO/out"
)
for m in zstdmt xzmt; do
  "${VG[@]}" -q "$WASMTIME" compile -W threads=y,shared-memory=y "$WORK/$m.wasm" -o "$V/$m.cwasm" 2>/dev/null
  WT_CWASM="$V/$m.wt" "${VG[@]}" -q "$WTCACHED" --no-cache -- "$WORK/$m.wasm" </dev/null >/dev/null 2>&1
done
ir() { # logs -> total I refs
  grep -h 'I *refs' "$@" | awk '{gsub(",", "", $NF); s += $NF} END {printf "%.0f", s}'
}
echo "| row | ours (G instr.) | Wasmtime CLI | ours/CLI | output |"
echo "|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
  IFS='|' read -r name m args <<<"$row"
  printf '%s\n' "$name" | grep -Eq -- "$FILTER" || continue
  a=${args//IO/$V/io}
  rm -f "$V"/io/out "$V"/*.log
  "${VG[@]}" --log-file="$V/o.%p.log" env WT_CWASM="$V/$m.wt" "$WTCACHED" --no-cache --dir "$V/io::$V/io" -- "$WORK/$m.wasm" $a >/dev/null 2>&1
  o=$(ir "$V"/o.*.log); so=$(sha256sum <"$V/io/out" | cut -c1-16)
  rm -f "$V"/io/out
  "${VG[@]}" --log-file="$V/w.%p.log" "$WASMTIME" run -W threads=y,shared-memory=y -S threads=y --dir "$V/io::$V/io" \
    --allow-precompiled "$V/$m.cwasm" $a >/dev/null 2>&1
  w=$(ir "$V"/w.*.log); sw=$(sha256sum <"$V/io/out" | cut -c1-16)
  python3 -c "import sys; o, w = int(sys.argv[1]), int(sys.argv[2]); print(f'| {sys.argv[3]} | {o/1e9:.3f} | {w/1e9:.3f} | {o/w:.3f} | {sys.argv[4]} |')" \
    "$o" "$w" "$name" "$([ "$so" = "$sw" ] && echo same || echo "**DIFF**")"
done
