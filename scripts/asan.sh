#!/usr/bin/env bash
# Runs the unit tests and the Rust integration tests under AddressSanitizer with
# LeakSanitizer (leaks are reported at exit). Needs -Zsanitizer, so it uses
# RUSTC_BOOTSTRAP on the stable toolchain. Builds everything instrumented into
# target/asan (~10 minutes on 2 cores).
# The C programs are checked with valgrind instead (CTest memcheck-* tests).
set -euo pipefail
cd "$(dirname "$0")/.."
# Test filters: modules of tests/integration, and the leak tests of tests/process (not
# its RSS test: ASan's own allocations would move the process's RSS).
integration=(semantics:: host_control:: bad_input:: teardown:: stdio:: rust_guest::
    limits::memory_cap limits::thread_flood limits::huge_argv limits::oversized_io)
process=(runs_leave cancel_races eight_host_threads)
# Wasmtime turns SIGSEGV/SIGILL/SIGFPE/SIGBUS in guest code into traps: ASan must leave
# those signals to it.
export ASAN_OPTIONS="handle_segv=0:handle_sigbus=0:handle_sigill=0:handle_sigfpe=0:allow_user_segv_handler=1:detect_leaks=1"
asan_test() {
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" CARGO_TARGET_DIR=target/asan \
        cargo test --release --locked --target x86_64-unknown-linux-gnu "$@"
}
asan_test --lib
asan_test --test integration -- "${integration[@]}"
asan_test --test process -- "${process[@]}"
