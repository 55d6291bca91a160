//! Memory of a long-lived run (issue 10): per-spawn bookkeeping must not grow with the
//! number of threads a run has spawned over its life. Alone in its test binary so that
//! no other test's allocations move the process's RSS meanwhile.

mod common;

use common::{engine, load, run_watched};
use wasithreads::{ExitKind, RunConfig};

#[test]
fn spawn_and_join_cycles_keep_memory_flat() {
    // 100 000 rounds of spawn + join in one run: the per-run bookkeeping must not grow.
    let wat = r#"(module
      (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (import "env" "memory" (memory 1 1 shared))
      (func (export "wasi_thread_start") (param i32 i32)
        (i32.atomic.store (i32.const 0) (i32.const 1))
        (drop (memory.atomic.notify (i32.const 0) (i32.const 1))))
      (func (export "_start") (local $i i32)
        (loop $round
          (i32.atomic.store (i32.const 0) (i32.const 0))
          (if (i32.lt_s (call $spawn (i32.const 0)) (i32.const 0)) (then (call $exit (i32.const 1))))
          (block $joined (loop $wait
            (br_if $joined (i32.atomic.load (i32.const 0)))
            (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))
            (br $wait)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $round (i32.lt_u (local.get $i) (i32.const 100000))))
        (call $exit (i32.const 0))))"#;
    let engine = engine();
    let module = load(&engine, wat);
    let mut config = RunConfig::default();
    config.limits.max_threads = 4;
    // Warm up the pool and the allocator, then measure a run of the same size.
    let (exit, _) = run_watched(&module, &config);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
    let before = rss_kib();
    let (exit, _) = run_watched(&module, &config);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 2048, "RSS grew by {grown} KiB over 100 000 spawn/join cycles");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
