#!/usr/bin/env bash
# Warm-run overhead of the Go binding against C, measured in the same session:
#   bash bench.sh [LIBDIR [ROUNDS [RUNS]]]
# builds testdata/run_tiny.c and the Go test binary against LIBDIR (default: the build
# tree ../../target/release), then alternates C and Go runs ROUNDS times (default 7),
# RUNS warm runs each (default 5000), once pinned to CPU 0 and once unpinned, and prints
# the median over rounds of each side's per-run median. Environment as in test.sh.
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
for pin in "taskset -c 0" ""; do
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
