#!/usr/bin/env bash
# Compile time alone, per guest: wasithreads (load = rewrite + Cranelift compile, then
# wt_module_serialize to a file, via wt-run-cached with a fresh WT_CWASM and no guest
# arguments, so the guest just prints its usage) vs `wasmtime compile -C cache=n` (also
# writes a .cwasm). Median wall and user+sys of $REPS runs. Not run in CI.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/real}
REPS=${REPS:-3}
WASMTIME=${WASMTIME:-/tmp/wasmtime46/wasmtime_cli/wasmtime}
WTCACHED=${WTCACHED:-$WORK/wt-run-cached}
T=$WORK/compile-tmp; mkdir -p "$T"
echo "| module | size | ours compile | 46 compile | ours/46 | CPU ours | CPU 46 |"
echo "|---|---|---|---|---|---|---|"
for w in "$WORK/rg/bin/rg.wasm" "$WORK/zstdmt.wasm" "$WORK/xzmt.wasm" "$WORK/sqlsort.wasm" "$WORK/pcsum.wasm"; do
  ow=(); tw=(); oc=(); tc=()
  for k in $(seq "$REPS"); do
    rm -f "$T"/*
    t0=$EPOCHREALTIME
    WT_CWASM="$T/x.wt" /usr/bin/time -f '%U %S' -o "$T/o.cpu" "$WTCACHED" --no-cache -- "$w" </dev/null >/dev/null 2>&1
    t1=$EPOCHREALTIME
    /usr/bin/time -f '%U %S' -o "$T/t.cpu" "$WASMTIME" compile -C cache=n -W threads=y,shared-memory=y "$w" -o "$T/x.cwasm" 2>/dev/null
    t2=$EPOCHREALTIME
    ow+=("$(python3 -c "print($t1-$t0)")"); tw+=("$(python3 -c "print($t2-$t1)")")
    oc+=("$(tail -1 "$T/o.cpu" | awk '{print $1+$2}')"); tc+=("$(tail -1 "$T/t.cpu" | awk '{print $1+$2}')")
  done
  python3 - "$w" "$(stat -c %s "$w")" "${ow[*]}" "${tw[*]}" "${oc[*]}" "${tc[*]}" <<'PY'
import sys, statistics as st, os
w, size, *cols = sys.argv[1:]
o, t, oc, tc = [st.median(map(float, c.split())) for c in cols]
print(f"| {os.path.basename(w)} | {int(size)/1e6:.1f} MB | {o:.3f}s | {t:.3f}s | {o/t:.2f} | {oc:.2f}s | {tc:.2f}s |")
PY
done
