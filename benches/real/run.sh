#!/usr/bin/env bash
# Real programs under wasithreads (wt-run) vs the Wasmtime CLI vs native: wall time,
# median of $REPS interleaved runs, outputs checked against native. Run build.sh first.
# Not run in CI. Prints a markdown table on stdout (progress on stderr).
#
#   WASMTIME=/path/to/wasmtime REPS=3 benches/real/run.sh [FILTER]
#
# FILTER (a regex) picks rows by "program/threads", e.g. 'rg' or 'zstd.*/2'.
# Columns: "compile incl." = each run compiles the module (wt-run, wasmtime run x.wasm);
# "CPU" = user+sys time (median), less sensitive than wall time to other load on the host.
# "precompiled" = wt-run-cached with WT_CWASM vs wasmtime run --allow-precompiled x.cwasm.
# "warm" = each CLI with its own compile cache, filled before timing: wt-run's
# (WT_RUN_CACHE_DIR=$WORK/wtcache) vs wasmtime run's default one. WARM=0 leaves them out.
# Guests see each host directory under the same path, so outputs compare byte for byte.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/real}
REPS=${REPS:-3}
FILTER=${1:-.}
WASMTIME=${WASMTIME:-/tmp/wasmtime46/wasmtime_cli/wasmtime}
WTRUN=${WTRUN:-$REPO/target/examples-c/wt-run}
WTCACHED=${WTCACHED:-$WORK/wt-run-cached}
PRECOMPILED=${PRECOMPILED:-1}
WARM=${WARM:-1}
# Precompiled modules are made afresh each time (a rebuilt guest must not meet a stale one).
R=$WORK/results; rm -rf "$R" "$WORK/cwasm"; mkdir -p "$R" "$WORK/cwasm"
# -C cache=n: the CLI caches compiled modules by default (~/.cache/wasmtime), which would
# turn "compile included" into "load from cache" for it but not for wt-run.
WFLAGS=(-C cache=n -W threads=y,shared-memory=y -S threads=y)

# name|threads|wasm|native|dirs (space-separated, preopened rw)|args (same for all)|output file to check ("" = stdout only)|sort stdout?
# No rg -j2 row: on wasm32-wasip1-threads ripgrep's parallel walker (ignore 0.4.x) fails
# every root with "rg: unsupported platform" (DirEntryRaw::from_path has no wasm
# implementation), under any runtime.
ROWS=(
  "rg|1|$WORK/rg/bin/rg.wasm|$WORK/rg-native/bin/rg|$WORK/tree|--no-config -j1 -c unsafe $WORK/tree||sort"
  "zstd -L6 compress|1|$WORK/zstdmt.wasm|$WORK/zstdmt-native|$WORK/io|-T 1 -L 6 $WORK/io/input.tar $WORK/io/out.zst|$WORK/io/out.zst|"
  "zstd -L6 compress|2|$WORK/zstdmt.wasm|$WORK/zstdmt-native|$WORK/io|-T 2 -L 6 $WORK/io/input.tar $WORK/io/out.zst|$WORK/io/out.zst|"
  "zstd -L6 compress, no workers|1|$WORK/zstdmt.wasm|$WORK/zstdmt-native|$WORK/io|-T 0 -L 6 $WORK/io/input.tar $WORK/io/out.zst|$WORK/io/out.zst|"
  "zstd decompress|1|$WORK/zstdmt.wasm|$WORK/zstdmt-native|$WORK/io|-d $WORK/io/ref.zst $WORK/io/out.tar|$WORK/io/out.tar|"
  "xz -L2 compress|1|$WORK/xzmt.wasm|$WORK/xzmt-native|$WORK/io|-T 1 -L 2 $WORK/io/input.tar $WORK/io/out.xz|$WORK/io/out.xz|"
  "xz -L2 compress|2|$WORK/xzmt.wasm|$WORK/xzmt-native|$WORK/io|-T 2 -L 2 $WORK/io/input.tar $WORK/io/out.xz|$WORK/io/out.xz|"
  "xz decompress|1|$WORK/xzmt.wasm|$WORK/xzmt-native|$WORK/io|-d $WORK/io/ref.xz $WORK/io/out.tar|$WORK/io/out.tar|"
  "SQLite ORDER BY, external sort|1|$WORK/sqlsort.wasm|$WORK/sqlsort-native|$WORK/sq|$WORK/sq 1 1000000||"
  "SQLite ORDER BY, external sort|2|$WORK/sqlsort.wasm|$WORK/sqlsort-native|$WORK/sq|$WORK/sq 2 1000000||"
  "pcsum (Rust std::thread)|1|$WORK/pcsum.wasm|$WORK/pcsum-native|$WORK/tree $WORK/sumout|-j 1 $WORK/tree $WORK/sumout||"
  "pcsum (Rust std::thread)|2|$WORK/pcsum.wasm|$WORK/pcsum-native|$WORK/tree $WORK/sumout|-j 2 $WORK/tree $WORK/sumout||"
)

mkdir -p "$WORK/io"
[ -f "$WORK/io/input.tar" ] || cp "$WORK/input.tar" "$WORK/io/input.tar"
[ -f "$WORK/io/ref.zst" ] || "$WORK/zstdmt-native" -T 2 -L 6 "$WORK/io/input.tar" "$WORK/io/ref.zst" 2>/dev/null
[ -f "$WORK/io/ref.xz" ] || "$WORK/xzmt-native" -T 2 -L 2 "$WORK/io/input.tar" "$WORK/io/ref.xz" 2>/dev/null

RUNNERS=(native ours wasmtime)
[ "$PRECOMPILED" = 1 ] && RUNNERS+=(ours-pre wasmtime-pre)
[ "$WARM" = 1 ] && RUNNERS+=(ours-warm wasmtime-warm)

# Precompile each module once, for both.
if [ "$PRECOMPILED" = 1 ]; then
  for w in $(printf '%s\n' "${ROWS[@]}" | cut -d'|' -f3 | sort -u); do
    b=$(basename "$w" .wasm)
    [ -f "$WORK/cwasm/$b.cwasm" ] || "$WASMTIME" compile -W threads=y,shared-memory=y "$w" -o "$WORK/cwasm/$b.cwasm" 2>/dev/null
    if [ ! -f "$WORK/cwasm/$b.wt" ]; then
      # A run just to produce the serialized module (a usage error is enough: the module
      # is loaded before the run starts; --help-like args would still run it, so give the
      # guest no args and ignore what it says).
      WT_CWASM="$WORK/cwasm/$b.wt" "$WTCACHED" --no-cache -- "$w" </dev/null >/dev/null 2>&1 || true
    fi
  done
fi
# Fill both CLIs' compile caches (a run with no arguments is enough: the module is
# compiled before it runs).
if [ "$WARM" = 1 ]; then
  for w in $(printf '%s\n' "${ROWS[@]}" | cut -d'|' -f3 | sort -u); do
    WT_RUN_CACHE_DIR="$WORK/wtcache" "$WTRUN" -- "$w" </dev/null >/dev/null 2>&1 || true
    "$WASMTIME" run -W threads=y,shared-memory=y -S threads=y "$w" </dev/null >/dev/null 2>&1 || true
  done
fi

cmd_for() { # runner row -> prints nothing, sets CMD array
  local runner=$1 name threads wasm native dirs args out sortit
  IFS='|' read -r name threads wasm native dirs args out sortit <<<"$2"
  local d b; b=$(basename "$wasm" .wasm)
  CMD=()
  case $runner in
    native) CMD=("$native" $args) ;;
    ours|ours-pre|ours-warm)
      CMD=(env)
      [ "$runner" = ours-pre ] && CMD+=("WT_CWASM=$WORK/cwasm/$b.wt") || CMD+=(-u WT_CWASM)
      CMD+=("WT_RUN_CACHE_DIR=$WORK/wtcache")
      CMD+=("$([ "$runner" = ours-pre ] && echo "$WTCACHED" || echo "$WTRUN")")
      # wt-run's compile cache would turn "compile included" into "load from cache", and
      # take the place of WT_CWASM.
      [ "$runner" = ours-warm ] || CMD+=(--no-cache)
      for d in $dirs; do CMD+=(--dir "$d::$d"); done
      CMD+=(-- "$wasm" $args) ;;
    wasmtime|wasmtime-pre|wasmtime-warm)
      CMD=("$WASMTIME" run "${WFLAGS[@]}")
      [ "$runner" = wasmtime-warm ] && CMD=("$WASMTIME" run -W threads=y,shared-memory=y -S threads=y)
      for d in $dirs; do CMD+=(--dir "$d::$d"); done
      if [ "$runner" = wasmtime-pre ]; then CMD+=(--allow-precompiled "$WORK/cwasm/$b.cwasm"); else CMD+=("$wasm"); fi
      CMD+=($args) ;;
  esac
}

prep() { # clean outputs before a run (not timed)
  rm -rf "$WORK/sumout" "$WORK/sq" "$WORK/io/out.zst" "$WORK/io/out.xz" "$WORK/io/out.tar"; mkdir -p "$WORK/sumout" "$WORK/sq"
}

for rep in $(seq "$REPS"); do
  for i in "${!ROWS[@]}"; do
    row=${ROWS[$i]}
    IFS='|' read -r name threads wasm native dirs args out sortit <<<"$row"
    printf '%s/%s\n' "$name" "$threads" | grep -Eq -- "$FILTER" || continue
    for runner in "${RUNNERS[@]}"; do
      cmd_for "$runner" "$row"
      prep
      tag="$R/$i.$runner.$rep"
      t0=$EPOCHREALTIME
      /usr/bin/time -f '%U %S' -o "$tag.cpu" "${CMD[@]}" </dev/null >"$tag.out" 2>"$tag.err"
      rc=$?
      t1=$EPOCHREALTIME
      echo "$rc" >"$tag.rc"
      python3 -c "print(f'{$t1-$t0:.3f}')" >"$tag.time"
      if [ -n "$sortit" ]; then sort "$tag.out" -o "$tag.out"; fi
      if [ -n "$out" ] && [ -f "$out" ]; then sha256sum <"$out" | cut -c1-16 >>"$tag.out"; fi
      [ "$runner" = ours ] && [ "$rep" = 1 ] && printf '%s\n' "${CMD[*]}" >"$R/$i.ours.cmd"
      printf 'rep %s  %-34s %-12s rc=%s %ss\n' "$rep" "$name/$threads" "$runner" "$rc" "$(cat "$tag.time")" >&2
    done
  done
done

python3 - "$R" "$REPS" "${RUNNERS[*]}" "${ROWS[@]}" <<'PY'
import sys, os, statistics
R, reps, runners, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
def rd(p):
    try: return open(p, 'rb').read()
    except OSError: return None
pre = 'ours-pre' in runners
warm = 'ours-warm' in runners
hdr = "| program | threads | ours | Wasmtime 46 | native | ours/46 |"
sep = "|---|---|---|---|---|---|"
if pre: hdr += " ours precomp. | 46 precomp. | ours/46 precomp. |"; sep += "---|---|---|"
if warm: hdr += " ours warm | 46 warm | ours/46 warm |"; sep += "---|---|---|"
hdr += " CPU ours/46 |"; sep += "---|"
if pre: hdr += " CPU ours/46 precomp. |"; sep += "---|"
if warm: hdr += " CPU ours/46 warm |"; sep += "---|"
hdr += " output |"; sep += "---|"
print(hdr); print(sep)
notes = []
for i, row in enumerate(rows):
    name, threads = row.split('|')[:2]
    if not os.path.exists(f"{R}/{i}.native.1.time"): continue
    med, cpu, status = {}, {}, []
    for r in runners:
        ts = [float(open(f"{R}/{i}.{r}.{k}.time").read()) for k in range(1, reps + 1) if os.path.exists(f"{R}/{i}.{r}.{k}.time")]
        med[r] = statistics.median(ts) if ts else float('nan')
        cs = []
        for k in range(1, reps + 1):
            try: cs.append(sum(float(x) for x in open(f"{R}/{i}.{r}.{k}.cpu").read().split()[-2:]))
            except (OSError, ValueError): pass
        cpu[r] = statistics.median(cs) if cs else float('nan')
        ref = rd(f"{R}/{i}.native.1.out")
        for k in range(1, reps + 1):
            rc = open(f"{R}/{i}.{r}.{k}.rc").read().strip()
            o = rd(f"{R}/{i}.{r}.{k}.out")
            if rc != '0' or o != ref:
                status.append(f"{r}#{k}: rc={rc}{'' if o == ref else ', output differs'}")
    cell = lambda r: f"{med[r]:.3f}s"
    line = f"| {name} | {threads} | {cell('ours')} | {cell('wasmtime')} | {cell('native')} | {med['ours']/med['wasmtime']:.3f} |"
    if pre: line += f" {cell('ours-pre')} | {cell('wasmtime-pre')} | {med['ours-pre']/med['wasmtime-pre']:.3f} |"
    if warm: line += f" {cell('ours-warm')} | {cell('wasmtime-warm')} | {med['ours-warm']/med['wasmtime-warm']:.3f} |"
    line += f" {cpu['ours']/cpu['wasmtime']:.3f} |"
    if pre: line += f" {cpu['ours-pre']/cpu['wasmtime-pre']:.3f} |"
    if warm: line += f" {cpu['ours-warm']/cpu['wasmtime-warm']:.3f} |"
    line += (" same |" if not status else " **DIFF** |")
    print(line)
    if status: notes.append(f"- {name}/{threads}: " + "; ".join(status[:6]) + f" (see {R}/{i}.*)")
if notes: print("\nDifferences:\n" + "\n".join(notes))
PY
