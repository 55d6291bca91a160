#!/usr/bin/env bash
# Warm-run overhead of the Go binding against C, measured in the same session:
#   bash bench.sh [LIBDIR [ROUNDS [RUNS]]]
# builds testdata/run_tiny.c and the Go test binary against LIBDIR (default: the build
# tree ../../target/release), then alternates C and Go runs ROUNDS times (default 7),
# RUNS warm runs each (default 5000), once pinned to CPU 0 and once unpinned, and prints
# the median over rounds of each side's per-run median. Then plugin calls: a warm call of
# the C plugin's add from C (testdata/call_add.c) and Go (BenchmarkCallAdd), alternated
# ROUNDS times, and BenchmarkCallSpin (1 and 2 goroutines calling a CPU-bound export).
# The C plugin is target/guests/plugin-c/plugin.wasm (cargo test makes it).
# WASITHREADS_BENCH=calls runs only the plugin calls.
# Environment as in test.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${2:-7}
runs=${3:-5000}
# shellcheck source=test.sh
WASITHREADS_GO_ENV_ONLY=1 source "$here/test.sh" "${1:-}"
out="$work/bench"
mkdir -p "$out"
cc -O2 -Wall -Wextra -I"$incdir" "$here/testdata/run_tiny.c" -L"$shim" -lwasithreads -Wl,-rpath,"$shim" -o "$out/run_tiny"
# Both sides use the shared library, so only the binding differs.
(cd "$here" && CGO_LDFLAGS="-g -O2 -L$shim -Wl,-rpath,$shim" \
  go test -c -tags wasithreads_shared -o "$out/wasithreads.test" .)
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# WASITHREADS_BENCH=calls: only the plugin calls below.
for pin in "taskset -c 0" ""; do
  [ "${WASITHREADS_BENCH:-}" = calls ] && break
  [ -n "$pin" ] && ! command -v taskset >/dev/null && continue
  : >"$out/c-sync"; : >"$out/c-async"; : >"$out/go-sync"; : >"$out/go-cancel"
  for _ in $(seq "$rounds"); do
    $pin "$out/run_tiny" "$runs" sync | sed -n 's/.*median \([0-9.]*\) us.*/\1/p' >>"$out/c-sync"
    $pin "$out/run_tiny" "$runs" async | sed -n 's/.*median \([0-9.]*\) us.*/\1/p' >>"$out/c-async"
    $pin "$out/wasithreads.test" -test.run '^$' -test.bench 'RunTiny' -test.benchtime "${runs}x" >"$out/go"
    sed -n 's/^BenchmarkRunTiny[- ].* \([0-9.]*\) median-µs\/run/\1/p' "$out/go" >>"$out/go-sync"
    sed -n 's/^BenchmarkRunTinyCancellable.* \([0-9.]*\) median-µs\/run/\1/p' "$out/go" >>"$out/go-cancel"
  done
  echo "${pin:-unpinned}: median over $rounds rounds of $runs warm runs, µs per run:"
  echo "  C  wt_run                          $(median <"$out/c-sync")   (rounds: $(tr '\n' ' ' <"$out/c-sync"))"
  echo "  Go mod.Run(context.Background())   $(median <"$out/go-sync")   (rounds: $(tr '\n' ' ' <"$out/go-sync"))"
  echo "  C  wt_run_start + wait + free      $(median <"$out/c-async")   (rounds: $(tr '\n' ' ' <"$out/c-async"))"
  echo "  Go mod.Run(cancellable ctx)        $(median <"$out/go-cancel")   (rounds: $(tr '\n' ' ' <"$out/go-cancel"))"
done

plugin="$here/../../target/guests/plugin-c/plugin.wasm"
if [ ! -e "$plugin" ]; then
  plugin="$out/plugin.wasm"
  bash "$here/../../tests/guests/plugin-c/build.sh" "$plugin"
fi
cc -O2 -Wall -Wextra -I"$incdir" "$here/testdata/call_add.c" -L"$shim" -lwasithreads -Wl,-rpath,"$shim" -o "$out/call_add"
: >"$out/c-add"; : >"$out/go-add"; : >"$out/go-addvals"
for _ in $(seq "$rounds"); do
  "$out/call_add" "$plugin" 100000 1 | sed -n 's/.*median \([0-9.]*\) ns.*/\1/p' >>"$out/c-add"
  (cd "$here" && "$out/wasithreads.test" -test.run '^$' -test.bench 'CallAdd/c/' -test.benchtime 100000x) >"$out/go"
  sed -n 's|^BenchmarkCallAdd/c/Call[-0-9]*[[:space:]]*[0-9]*[[:space:]]*\([0-9.]*\) ns/op.*|\1|p' "$out/go" >>"$out/go-add"
  sed -n 's|^BenchmarkCallAdd/c/CallVals[-0-9]*[[:space:]]*[0-9]*[[:space:]]*\([0-9.]*\) ns/op.*|\1|p' "$out/go" >>"$out/go-addvals"
done
echo "warm call of the C plugin's add(i32, i32), median over $rounds rounds of 100000 calls, ns per call:"
echo "  C  wt_instance_call                $(median <"$out/c-add")   (rounds: $(tr '\n' ' ' <"$out/c-add"))"
echo "  Go inst.Call(ctx, \"add\", i, 2)    $(median <"$out/go-add")   (rounds: $(tr '\n' ' ' <"$out/go-add"))"
echo "  Go inst.CallVals                  $(median <"$out/go-addvals")   (rounds: $(tr '\n' ' ' <"$out/go-addvals"))"
(cd "$here" && "$out/wasithreads.test" -test.run '^$' -test.bench 'CallSpin' -test.benchtime 400x -test.count 3) |
  grep '^BenchmarkCallSpin'
