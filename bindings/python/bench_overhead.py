#!/usr/bin/env python3
"""Overhead of a warm ``module.run`` of a tiny module from Python vs from C.

    python3 bench_overhead.py [--runs N] [--rounds R] [--header path/to/wasithreads.h]

The C side is a real C program (compiled here with gcc against the header and the very
libwasithreads.so that ``import wasithreads`` loaded), not ``wt_run`` called through ctypes.
Both sides load the same module on an engine with default settings, warm up, then time
each run with a monotonic clock; the figures are medians per run in µs. C and Python
alternate for R rounds so that both see the same machine state.

Scenarios:
  bare      C: wt_run(engine, module, NULL, &exit)         Python: module.run() in the main
            thread; also from a worker thread ("bare, worker thread"), where it is a plain
            wt_run, and C's wt_run_start + wt_run_wait + wt_run_free ("C start/wait"),
            which is what the main-thread Python run is built on (to stay responsive to
            Ctrl-C); wt_run_start starts a supervisor OS thread per run
  callback  C: per run, a config with argv {"prog", "x"} and a stdout callback, wt_run,
            free the config      Python: module.run(args=["prog", "x"], stdout=cb)
            (the guest writes one line, "hi\n", which the callback receives)
  no backtraces   Python module.run(backtraces=False), main and worker thread: without the
            binding's own thread-exit trampoline (Exit.stopped_at), which is otherwise
            registered for every run and called once per guest thread
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import wasithreads as wt

# A wasi-threads module (thread-spawn, shared memory) whose _start writes "hi\n" to stdout
# when it has an argument besides argv[0], and returns.
GUEST = rb"""(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $argc (param i32 i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (export "memory" (memory 0))
  (data (i32.const 64) "hi\n")
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start")
    (drop (call $argc (i32.const 0) (i32.const 4)))
    (if (i32.ge_u (i32.load (i32.const 0)) (i32.const 2)) (then
      (i32.store (i32.const 16) (i32.const 64))
      (i32.store (i32.const 20) (i32.const 3))
      (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))))
"""

C_SOURCE = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "wasithreads.h"

static void die(wt_error_t *err) {
    if (err) { fprintf(stderr, "error: %s\n", wt_error_message(err)); exit(1); }
}
static double now_us(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
static void on_output(void *ud, int32_t tid, const uint8_t *data, size_t len) {
    (void)tid; (void)data; *(size_t *)ud += len;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: bench module.wat runs warmup\n"); return 2; }
    int runs = atoi(argv[2]), warmup = atoi(argv[3]);
    FILE *f = fopen(argv[1], "rb"); if (!f) { perror(argv[1]); return 1; }
    static uint8_t wat[1 << 16]; size_t len = fread(wat, 1, sizeof wat, f); fclose(f);
    wt_engine_t *engine; die(wt_engine_new(NULL, &engine));
    wt_module_t *module; die(wt_module_load(engine, wat, len, &module));
    double *t = malloc(sizeof(double) * (size_t)runs);
    static const char *names[] = {"bare", "callback", "start"};
    for (int scenario = 0; scenario < 3; scenario++) {
        size_t written = 0;
        for (int i = -warmup; i < runs; i++) {
            double start = now_us();
            wt_exit_t how;
            if (scenario == 0) {
                die(wt_run(engine, module, NULL, &how));
            } else if (scenario == 2) {
                wt_run_t *run;
                die(wt_run_start(engine, module, NULL, &run));
                die(wt_run_wait(run, &how));
                wt_run_free(run);
            } else {
                wt_run_config_t *config = wt_run_config_new();
                die(wt_run_config_push_arg(config, "prog"));
                die(wt_run_config_push_arg(config, "x"));
                die(wt_run_config_set_output_callback(config, 1, on_output, &written));
                die(wt_run(engine, module, config, &how));
                wt_run_config_free(config);
            }
            if (how.kind != WT_EXIT_CODE || how.code != 0) { fprintf(stderr, "bad exit\n"); return 1; }
            wt_exit_clear(&how);
            if (i >= 0) t[i] = now_us() - start;
        }
        if (scenario == 1 && written != 3 * (size_t)(runs + warmup)) { fprintf(stderr, "bad output\n"); return 1; }
        qsort(t, (size_t)runs, sizeof(double), cmp);
        printf("%s %.2f\n", names[scenario], t[runs / 2]);
    }
    wt_module_free(module); wt_engine_free(engine); free(t);
    return 0;
}
"""


def find_header(explicit: str | None) -> Path:
    candidates = [explicit] if explicit else []
    candidates += [
        Path(wt.library_path()).parent.parent / "include" / "wasithreads.h",  # an install prefix
        Path(__file__).resolve().parent.parent.parent / "include" / "wasithreads.h",  # the repository
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    sys.exit("bench_overhead: cannot find wasithreads.h; pass --header")


def build_c(tmp: Path, header: Path, source: str = C_SOURCE) -> Path:
    """The C program ``source``, built against the header and the library Python loaded."""
    lib = Path(wt.library_path())
    libdir = tmp / "lib"
    libdir.mkdir()
    # The library's SONAME is libwasithreads.so.<version>: give the program that name to load.
    for name in ("libwasithreads.so", f"libwasithreads.so.{wt.version()}"):
        (libdir / name).symlink_to(lib)
    src = tmp / "bench.c"
    src.write_text(source)
    exe = tmp / "bench"
    cc = os.environ.get("CC", "gcc")
    subprocess.run(
        [cc, "-O2", "-std=c11", "-Wall", "-Werror", f"-I{header.parent}", str(src), "-o", str(exe),
         f"-L{libdir}", "-lwasithreads", f"-Wl,-rpath,{libdir}"],
        check=True,
    )
    return exe


def time_c(exe: Path, wat: Path, runs: int, warmup: int) -> dict:
    out = subprocess.run([str(exe), str(wat), str(runs), str(warmup)], check=True, capture_output=True, text=True)
    return {k: float(v) for k, v in (line.split() for line in out.stdout.splitlines())}


def time_python(module: wt.Module, runs: int, warmup: int) -> dict:
    written = [0]

    def on_output(tid: int, data: bytes) -> None:
        written[0] += len(data)

    clock = time.perf_counter_ns

    def measure(fn) -> float:
        samples = []
        for i in range(-warmup, runs):
            start = clock()
            exit = fn()
            elapsed = clock() - start
            assert exit.ok
            if i >= 0:
                samples.append(elapsed / 1000)
        return statistics.median(samples)

    result = {
        "bare": measure(lambda: module.run()),
        "callback": measure(lambda: module.run(args=["prog", "x"], stdout=on_output)),
    }
    result["bare_nobt"] = measure(lambda: module.run(backtraces=False))

    def in_worker() -> None:
        result["thread"] = measure(lambda: module.run())
        result["thread_nobt"] = measure(lambda: module.run(backtraces=False))

    worker = threading.Thread(target=in_worker)
    worker.start()
    worker.join()
    assert written[0] == 3 * (runs + warmup)
    return result


def time_ctypes_floor(module: wt.Module, runs: int, warmup: int) -> float:
    """wt_run through raw ctypes: the floor any ctypes binding pays (for information)."""
    from wasithreads import _ffi

    lib = _ffi.lib
    engine, mod = module.engine._h.ptr, module._h.ptr
    raw = _ffi.wt_exit_t()
    ref = ctypes.byref(raw)
    samples = []
    clock = time.perf_counter_ns
    for i in range(-warmup, runs):
        start = clock()
        err = lib.wt_run(engine, mod, None, ref)
        lib.wt_exit_clear(ref)
        elapsed = clock() - start
        assert not err
        if i >= 0:
            samples.append(elapsed / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000, help="timed runs per scenario and round")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--header", help="path of wasithreads.h")
    args = parser.parse_args()

    header = find_header(args.header)
    tmp = Path(tempfile.mkdtemp(prefix="wt-bench-"))
    try:
        exe = build_c(tmp, header)
        wat = tmp / "tiny.wat"
        wat.write_bytes(GUEST)
        engine = wt.Engine()
        module = engine.load(GUEST)
        rows = []
        for r in range(args.rounds):
            c = time_c(exe, wat, args.runs, args.warmup)
            py = time_python(module, args.runs, args.warmup)
            floor = time_ctypes_floor(module, args.runs, args.warmup)
            rows.append((c, py, floor))
            print(f"round {r + 1}: bare C {c['bare']:.1f} µs, Python {py['bare']:.1f} µs "
                  f"(worker thread {py['thread']:.1f}, C start/wait {c['start']:.1f}, raw ctypes "
                  f"wt_run {floor:.1f}); callback C {c['callback']:.1f} µs, "
                  f"Python {py['callback']:.1f} µs", flush=True)
        print(f"\nlibrary {wt.library_path()} ({wt.version()}), Python {sys.version.split()[0]}, "
              f"{args.runs} runs x {args.rounds} rounds; medians per run, µs (median of the rounds):")
        def line(label: str, c_key: str, py_key: str) -> None:
            c = statistics.median(row[0][c_key] for row in rows)
            py = statistics.median(row[1][py_key] for row in rows)
            best_c = min(row[0][c_key] for row in rows)
            best_py = min(row[1][py_key] for row in rows)
            print(f"  {label:24s} C {c:7.1f}   Python {py:7.1f}   overhead {py - c:+7.1f} µs ({py / c:.2f}x)"
                  f"   [best round: C {best_c:.1f}, Python {best_py:.1f}]")

        line("bare, main thread", "bare", "bare")
        line("bare, worker thread", "bare", "thread")
        line("callback, main thread", "callback", "callback")
        line("bare, main, no backtr.", "bare", "bare_nobt")
        line("bare, worker, no backtr.", "bare", "thread_nobt")
        start = statistics.median(row[0]["start"] for row in rows)
        print(f"  C wt_run_start + wt_run_wait + wt_run_free: {start:.1f} µs "
              f"[best round {min(row[0]['start'] for row in rows):.1f}]")
        floor = statistics.median(row[2] for row in rows)
        print(f"  raw ctypes wt_run, no wrapper (for information): {floor:.1f} µs")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
