#!/usr/bin/env bash
# The plugin figures of issue 22 from every front end, one after the other in one
# session, on the real C plugin (target/guests/plugin-c/plugin.wasm, which `cargo test`
# builds): the warm call of add(i32, i32) -> i32 and the two-thread speed-up of the
# CPU-bound spin(n), from C and C++ (examples-c's plugin-bench), Python
# (bindings/python/bench_plugins.py, in the venv bindings/python/test.sh made) and Go
# (bindings/go/bench.sh, plugin calls only). Run after scripts/test.sh:
#
#   bash benches/plugin-frontends.sh
#
# Each tool prints its own table; compare figures of one run only (the machine's load
# moves them all). See BENCHMARKS.md, "Plugins from every front end".
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
plugin=target/guests/plugin-c/plugin.wasm
[ -f "$plugin" ] || { echo "no $plugin: run cargo test --release first" >&2; exit 1; }
echo "== C and C++ (examples-c plugin-bench)"
"$target/examples-c/plugin-bench" "$plugin" 5
echo "== Python (bindings/python/bench_plugins.py)"
WASITHREADS_LIB="$PWD/$target/release/libwasithreads.so" "$target/python-venv/bin/python" bindings/python/bench_plugins.py --plugin "$plugin"
echo "== Go (bindings/go/bench.sh, plugin calls)"
WASITHREADS_BENCH=calls bash bindings/go/bench.sh "$target/release" 5
