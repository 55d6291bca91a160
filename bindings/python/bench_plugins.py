#!/usr/bin/env python3
"""Figures for plugins from Python: a warm export call, a guest -> host round trip, and
two Python threads calling a CPU-bound export at once.

    python3 bench_plugins.py [--plugin plugin.wasm] [--rounds R] [--calls N] [--header wasithreads.h]

The plugin is the real C plugin (tests/guests/plugin-c): the copy `cargo test` caches at
<repo>/target/guests/plugin-c/plugin.wasm, else one built with its build.sh. Scenarios,
each a median over R rounds:

  add, C            ns per wt_instance_call of add(i32, i32) -> i32 from a C program
                    (compiled here with gcc against the header and the library Python
                    loaded), the same instance setup as Python's
  add, Python       ns per inst.exports.add(1, 2): argument checks, the ctypes call
                    (which releases and retakes the GIL), the result's conversion
  add, raw ctypes   ns per lib.wt_instance_call through ctypes with arrays made once:
                    the floor of any ctypes binding (for information)
  host round trip   ns per env.host_add call inside host_add_loop(N): guest -> Python
                    host function (typed i64) -> guest; the host function runs on a
                    guest thread, with the GIL taken for it
  spin, 2 threads   throughput of two Python threads each calling spin(n) (CPU-bound,
                    no memory traffic) against one thread doing the same total work:
                    2.0 would be perfect scaling on 2 free cores
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import wasithreads as wt
from bench_overhead import build_c  # next to this script

REPO = Path(__file__).resolve().parent.parent.parent

C_SOURCE = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "wasithreads.h"

static void die(wt_error_t *err) {
    if (err) { fprintf(stderr, "error: %s\n", wt_error_message(err)); exit(1); }
}
static double now_ns(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y);
}
static wt_error_t *host_nop(void *env, wt_caller_t *c, const wt_val_t *a, size_t na, wt_val_t *r, size_t nr) {
    (void)env; (void)c; (void)a; (void)na; (void)r; (void)nr; return NULL;
}
static wt_error_t *host_add(void *env, wt_caller_t *c, const wt_val_t *a, size_t na, wt_val_t *r, size_t nr) {
    (void)env; (void)c; (void)na; (void)nr; r[0].of.i64 = a[0].of.i64 + a[1].of.i64; return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: bench plugin.wasm calls batches\n"); return 2; }
    int calls = atoi(argv[2]), batches = atoi(argv[3]);
    wt_engine_t *engine; die(wt_engine_new(NULL, &engine));
    wt_module_t *module; die(wt_module_load_file(engine, argv[1], &module));
    wt_run_config_t *config = wt_run_config_new();
    wt_valkind_t log_params[] = {WT_I32, WT_I32}, add_params[] = {WT_I64, WT_I64}, add_results[] = {WT_I64};
    die(wt_run_config_define_func(config, "env", "host_log", log_params, 2, NULL, 0, host_nop, NULL, NULL));
    die(wt_run_config_define_func(config, "env", "host_add", add_params, 2, add_results, 1, host_add, NULL, NULL));
    die(wt_run_config_define_func(config, "env", "host_block", NULL, 0, NULL, 0, host_nop, NULL, NULL));
    wt_instance_t *inst; die(wt_instance_new(engine, module, config, &inst));
    wt_run_config_free(config);
    double *t = malloc(sizeof(double) * (size_t)batches);
    wt_val_t args[2] = {{.kind = WT_I32, .of.i32 = 1}, {.kind = WT_I32, .of.i32 = 2}}, res[1];
    for (int b = -1; b < batches; b++) {
        double start = now_ns();
        for (int i = 0; i < calls; i++) {
            die(wt_instance_call(inst, "add", args, 2, res, 1, NULL));
            if (res[0].of.i32 != 3) { fprintf(stderr, "bad result\n"); return 1; }
        }
        if (b >= 0) t[b] = (now_ns() - start) / calls;
    }
    qsort(t, (size_t)batches, sizeof(double), cmp);
    printf("%.1f\n", t[batches / 2]);
    wt_instance_free(inst); wt_module_free(module); wt_engine_free(engine); free(t);
    return 0;
}
"""


def find_plugin(explicit: str | None, tmp: Path) -> Path:
    if explicit:
        return Path(explicit)
    cached = REPO / "target" / "guests" / "plugin-c" / "plugin.wasm"
    if cached.is_file():
        return cached
    out = tmp / "plugin.wasm"
    subprocess.run(["bash", str(REPO / "tests" / "guests" / "plugin-c" / "build.sh"), str(out)], check=True)
    return out


def per_call_ns(fn, calls: int, batches: int) -> float:
    """Median over ``batches`` of the time per call of ``calls`` calls of ``fn``."""
    clock = time.perf_counter_ns
    samples = []
    for b in range(-1, batches):  # one warm-up batch
        start = clock()
        for _ in range(calls):
            fn()
        if b >= 0:
            samples.append((clock() - start) / calls)
    return statistics.median(samples)


def raw_ctypes_add(inst: wt.Instance):
    from wasithreads import _ffi

    lib = _ffi.lib
    ptr = inst._core.h.ptr
    args = struct.pack("<i4xi4xi4xi4x", _ffi.WT_I32, 1, _ffi.WT_I32, 2)  # two wt_val_t
    res = ctypes.create_string_buffer(16)
    call = lib.wt_instance_call

    def add() -> None:
        call(ptr, b"add", args, 2, res, 1, None)

    return add


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def spin_speedup(inst: wt.Instance, n: int, calls: int) -> tuple[float, float, float, float, float]:
    """Seconds for 2 * calls spin(n) on one thread and on two threads, the ratio, and
    the process's CPU time / wall time in each (1.0 and 2.0 on two idle cores: below
    that, other processes had the cores)."""
    spin = inst.exports.spin
    expected = spin(n)

    def work(k: int) -> None:
        for _ in range(k):
            assert spin(n) == expected

    cpu, start = _cpu(), time.perf_counter()
    work(2 * calls)
    one = time.perf_counter() - start
    one_cpu = (_cpu() - cpu) / one
    threads = [threading.Thread(target=work, args=(calls,)) for _ in range(2)]
    cpu, start = _cpu(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    two = time.perf_counter() - start
    two_cpu = (_cpu() - cpu) / two
    return one, two, one / two, one_cpu, two_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugin", help="the C plugin's .wasm (default: cargo's cached build, else build.sh)")
    parser.add_argument("--header", default=str(REPO / "include" / "wasithreads.h"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20000, help="calls per batch")
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--spin-ms", type=float, default=20.0, help="the length of one spin call")
    parser.add_argument("--spin-calls", type=int, default=25, help="spin calls per thread")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="wt-bench-plugins-"))
    try:
        plugin = find_plugin(args.plugin, tmp)
        exe = build_c(tmp, Path(args.header), C_SOURCE)
        engine = wt.Engine()
        module = engine.load(plugin)

        def host_add(a: wt.i64, b: wt.i64) -> wt.i64:
            return a + b

        imports = {
            "env": {
                "host_log": wt.Func(lambda p, n: None, [int, int], []),
                "host_add": host_add,
                "host_block": wt.Func(lambda: None, [], []),
            }
        }
        rows = []
        with module.instantiate(imports=imports) as inst:
            add = inst.exports.add
            loop = inst.exports.host_add_loop
            # spin's length: calibrate n so that one call takes about --spin-ms.
            n = 1 << 16
            while True:
                start = time.perf_counter()
                inst.exports.spin(n)
                took = time.perf_counter() - start
                if took > 0.002:
                    break
                n *= 4
            n = min(2**31 - 1, int(n * args.spin_ms / 1000 / took))
            rt_calls = 2000
            for r in range(args.rounds):
                out = subprocess.run([str(exe), str(plugin), str(args.calls), str(args.batches)],
                                     check=True, capture_output=True, text=True)
                c_ns = float(out.stdout)
                py_ns = per_call_ns(lambda: add(1, 2), args.calls, args.batches)
                raw_ns = per_call_ns(raw_ctypes_add(inst), args.calls, args.batches)
                rt_ns = per_call_ns(lambda: loop(rt_calls), 1, args.batches) / rt_calls
                one, two, ratio, one_cpu, two_cpu = spin_speedup(inst, n, args.spin_calls)
                rows.append((c_ns, py_ns, raw_ns, rt_ns, ratio, one_cpu, two_cpu))
                print(f"round {r + 1}: add C {c_ns:.0f} ns, Python {py_ns:.0f} ns (raw ctypes {raw_ns:.0f}); "
                      f"host round trip {rt_ns:.0f} ns; spin x{2 * args.spin_calls} one thread {one:.2f} s "
                      f"(CPU/wall {one_cpu:.2f}), two threads {two:.2f} s (CPU/wall {two_cpu:.2f}): {ratio:.2f}x",
                      flush=True)
        med = [statistics.median(col) for col in zip(*rows)]
        print(f"\nlibrary {wt.library_path()} ({wt.version()}), Python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; medians of {args.rounds} rounds:")
        print(f"  add(1, 2) warm call     C {med[0]:.0f} ns   Python {med[1]:.0f} ns   "
              f"(+{med[1] - med[0]:.0f} ns, {med[1] / med[0]:.1f}x; raw ctypes {med[2]:.0f} ns)")
        print(f"  guest -> Python host_add -> guest   {med[3]:.0f} ns per call")
        print(f"  spin, 2 Python threads vs 1        {med[4]:.2f}x the throughput (spin({n}), "
              f"{args.spin_calls} calls per thread; process CPU/wall {med[5]:.2f} with one thread, "
              f"{med[6]:.2f} with two)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
