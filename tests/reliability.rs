//! Guest-reachable ways to crash, hang or exhaust the host (issue 10) that do not go
//! through WASI: nested instantiation, memories and tables, spawn bookkeeping, teardown
//! bounds. Each test asserts the run ends with the right result and the host is alive.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{engine, load, run_watched, within};
use wasithreads::{EngineConfig, ExitKind, Module, Run, RunConfig};

/// Every diagnostic of a run.
fn diagnostics(config: &mut RunConfig) -> Arc<Mutex<Vec<(i32, String)>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    config.hooks.on_diagnostic = Some(Arc::new(move |tid, m: &str| l.lock().unwrap().push((tid, m.to_string()))));
    log
}

/// A start function that recurses 100 frames deep and then spawns a thread, whose
/// instance runs the same start function: each instantiation used to run nested on the
/// spawner's native stack until the host process died of a stack overflow.
const RECURSIVE_START_SPAWN: &str = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func $deep (param $n i32)
    (if (local.get $n) (then (call $deep (i32.sub (local.get $n) (i32.const 1))) (return)))
    ;; 0 counts the start functions that ran, 4 the spawns that failed.
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (if (i32.lt_s (call $spawn (i32.const 0)) (i32.const 0))
      (then (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1))))))
  (func $start (call $deep (i32.const 100)))
  (start $start)
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start")
    ;; Every instance made after main's ran the start function once; exit with that count.
    (call $exit (i32.atomic.load (i32.const 0)))))"#;

#[test]
fn start_functions_that_spawn_recursively_do_not_crash_the_host() {
    let engine = engine();
    let module = load(&engine, RECURSIVE_START_SPAWN);
    for limit in [8u32, 1500] {
        let mut config = RunConfig::default();
        config.limits.max_threads = limit;
        let log = diagnostics(&mut config);
        let (exit, _) = run_watched(&module, &config);
        assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
        // main's instance plus one per thread the limit allowed; the last spawn failed.
        assert_eq!(exit.code, limit as i32 + 1, "{exit:?}");
        let log = log.lock().unwrap();
        assert!(log.iter().any(|(_, m)| m.contains("limit")), "{log:?}");
    }
}

#[test]
fn a_spawn_with_no_possible_thread_fails_at_once_with_a_reason() {
    let engine = engine();
    let module = load(&engine, &common::guest("(call $proc_exit (i32.sub (i32.const 0) (call $spawn (i32.const 0))))"));
    let mut config = RunConfig::default();
    config.limits.max_threads = 0;
    let log = diagnostics(&mut config);
    let (exit, _) = run_watched(&module, &config);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 6), "-EAGAIN: {exit:?}");
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].0, 0);
    assert!(log[0].1.contains("thread limit is 0"), "{log:?}");
}

#[test]
fn a_trap_in_a_spawned_instances_start_function_fails_the_spawn_not_the_run() {
    let wat = r#"(module
      (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (import "env" "memory" (memory 1 1 shared))
      (global $main (mut i32) (i32.const 1))
      ;; The first instance (main's) is marked in memory; every later one traps.
      (func $start
        (if (i32.atomic.rmw.cmpxchg (i32.const 0) (i32.const 0) (i32.const 1)) (then unreachable)))
      (start $start)
      (func (export "wasi_thread_start") (param i32 i32))
      (func (export "_start") (call $exit (i32.add (i32.const 100) (call $spawn (i32.const 0))))))"#;
    let engine = engine();
    let module = load(&engine, wat);
    let mut config = RunConfig::default();
    let log = diagnostics(&mut config);
    let (exit, _) = run_watched(&module, &config);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 100 - 6), "{exit:?}");
    let log = log.lock().unwrap();
    assert!(log.iter().any(|(tid, m)| *tid == 0 && m.contains("unreachable")), "{log:?}");
}

#[test]
fn table_growth_is_capped_per_run() {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (table $t 1 funcref)
      (func (export "_start")
        ;; 100 million elements: refused (-1) under the default run-wide budget.
        (if (i32.ne (table.grow $t (ref.null func) (i32.const 100000000)) (i32.const -1))
          (then (call $exit (i32.const 1))))
        ;; A modest growth still works.
        (if (i32.ne (table.grow $t (ref.null func) (i32.const 1000)) (i32.const 1))
          (then (call $exit (i32.const 2))))
        (call $exit (table.size $t))))"#;
    let engine = engine();
    let module = load(&engine, wat);
    let mut config = RunConfig::default();
    config.limits.max_memory = Some(1 << 20);
    let (exit, _) = run_watched(&module, &config);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 1001), "{exit:?}");
    config.limits.max_table_elements = 500;
    let (exit, _) = run_watched(&module, &config);
    assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
    assert_eq!(exit.code, 2, "1000 more elements do not fit a budget of 500: {exit:?}");
}

/// The guest of issue 13: it defines its shared memory, one thread increments a counter,
/// main waits for it and exits with 40 + counter. Wasmtime 46 exits 40 (each thread got
/// its own memory); here the thread's write is seen.
const DEFINED_SHARED_MEMORY: &str = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1 1 shared)
  (data (i32.const 64) "\2a")
  (func (export "wasi_thread_start") (param i32 i32)
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (i32.atomic.store (i32.const 4) (i32.const 1))
    (drop (memory.atomic.notify (i32.const 4) (i32.const 1))))
  (func (export "_start")
    (drop (call $spawn (i32.const 0)))
    (block $done (loop $wait
      (br_if $done (i32.atomic.load (i32.const 4)))
      (drop (memory.atomic.wait32 (i32.const 4) (i32.const 0) (i64.const -1)))
      (br $wait)))
    ;; The data segment was applied once, before main ran, and not again for the thread.
    (if (i32.ne (i32.load8_u (i32.const 64)) (i32.const 42)) (then (call $exit (i32.const 99))))
    (call $exit (i32.add (i32.const 40) (i32.atomic.load (i32.const 0))))))"#;

#[test]
fn a_module_that_defines_its_shared_memory_shares_it_between_threads() {
    let engine = engine();
    let module = load(&engine, DEFINED_SHARED_MEMORY);
    let (exit, _) = run_watched(&module, &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 41), "{exit:?}");
    // The same after a serialization round trip.
    let bytes = module.serialize().unwrap();
    // SAFETY: bytes from `serialize` of this library, just now.
    let again = unsafe { Module::deserialize(&engine, &bytes) }.unwrap();
    let (exit, _) = run_watched(&again, &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 41), "{exit:?}");
}

/// A real toolchain's module that defines its shared memory: Rust `std::thread`, linked
/// by rustc's rust-lld without `--import-memory` (`tests/guests/defined-memory`).
#[test]
fn a_rust_guest_linked_to_define_its_shared_memory_shares_it_between_threads() {
    let root = env!("CARGO_MANIFEST_DIR");
    let linker = format!("{root}/tests/guests/defined-memory/link.sh");
    let wasm = common::build_guest_with(
        "tests/guests/defined-memory/Cargo.toml",
        "defined-memory",
        false,
        &[("CARGO_TARGET_WASM32_WASIP1_THREADS_LINKER", &linker)],
    );
    let bytes = std::fs::read(&wasm).unwrap();
    let defines_shared = wasmparser::Parser::new(0).parse_all(&bytes).any(|p| match p.unwrap() {
        wasmparser::Payload::MemorySection(r) => r.into_iter().any(|m| m.unwrap().shared),
        _ => false,
    });
    assert!(defines_shared, "the guest was linked to define its shared memory");
    let module = Module::new(&engine(), &bytes).unwrap();
    let (exit, _) = run_watched(&module, &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 44), "{exit:?}");
}

#[test]
fn data_segments_of_an_imported_shared_memory_are_applied_once_per_run() {
    let wat = r#"(module
      (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (import "env" "memory" (memory 1 1 shared))
      (data (i32.const 16) "\01")
      (func (export "wasi_thread_start") (param i32 i32)
        (i32.atomic.store (i32.const 4) (i32.const 1))
        (drop (memory.atomic.notify (i32.const 4) (i32.const 1))))
      (func (export "_start")
        (i32.store8 (i32.const 16) (i32.const 7))
        (drop (call $spawn (i32.const 0)))
        (block $done (loop $wait
          (br_if $done (i32.atomic.load (i32.const 4)))
          (drop (memory.atomic.wait32 (i32.const 4) (i32.const 0) (i64.const -1)))
          (br $wait)))
        ;; The thread's instantiation did not write the segment over main's 7.
        (call $exit (i32.load8_u (i32.const 16)))))"#;
    let engine = engine();
    let module = load(&engine, wat);
    let (exit, _) = run_watched(&module, &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 7), "{exit:?}");
}

#[test]
fn waits_on_a_shared_memory_at_index_one_are_stopped_by_cancel() {
    let wat = r#"(module
      (memory $private 1)
      (memory $shared (export "memory") 1 1 shared)
      (func (export "_start")
        (drop (memory.atomic.wait32 $shared (i32.const 0) (i32.const 0) (i64.const -1)))))"#;
    let engine = engine();
    let module = load(&engine, wat);
    let exit = within(Duration::from_secs(60), move || {
        let run = Run::start(&module, &RunConfig::default()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        run.cancel();
        run.wait()
    });
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
}

#[test]
fn two_shared_memories_are_refused_at_load_naming_them() {
    let engine = engine();
    let err = Module::new(&engine, b"(module (memory 1 1 shared) (memory 1 1 shared))").err().unwrap();
    assert!(format!("{err:#}").contains("memories 0 and 1"), "{err:#}");
}

#[test]
fn a_spawning_module_whose_memory_is_not_shared_is_refused_with_the_reason() {
    let engine = engine();
    let wat = r#"(module (import "wasi" "thread-spawn" (func (param i32) (result i32)))
      (memory (export "memory") 1) (func (export "_start")))"#;
    let err = Module::new(&engine, wat.as_bytes()).err().unwrap();
    assert!(format!("{err:#}").contains("own copy"), "{err:#}");
}

#[test]
fn a_wasm_stack_above_2_mib_works() {
    let engine = wasithreads::Engine::new(&EngineConfig { max_wasm_stack: 64 << 20, ..Default::default() }).unwrap();
    // 400 000 frames: several MiB of wasm stack, more than the default 1 MiB allows.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func $deep (param $n i32) (result i32)
        (local i64 i64 i64 i64 i64 i64 i64 i64)
        (if (result i32) (local.get $n)
          (then (i32.add (i32.const 1) (call $deep (i32.sub (local.get $n) (i32.const 1)))))
          (else (i32.const 0))))
      (func (export "_start") (call $exit (i32.rem_u (call $deep (i32.const 400000)) (i32.const 256)))))"#;
    let module = load(&engine, wat);
    let (exit, _) = run_watched(&module, &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 400000 % 256), "{exit:?}");
    let small = load(&common::engine(), wat);
    let (exit, _) = run_watched(&small, &RunConfig::default());
    assert_eq!(exit.kind, ExitKind::Trap, "1 MiB is not enough: {exit:?}");
    let err = wasithreads::Engine::new(&EngineConfig { max_wasm_stack: 1 << 30, ..Default::default() }).err().unwrap();
    assert!(format!("{err:#}").contains("256 MiB"), "{err:#}");
}

#[test]
fn a_thread_that_does_not_stop_is_named_and_the_run_still_ends() {
    // The main thread is inside an output callback that takes 3 s (host code, which no
    // teardown can interrupt) when the timeout ends the run: with a 200 ms grace the
    // result comes back without it, and says so.
    let engine = engine();
    let module = load(&engine, &common::guest("(call $print (i32.const 1000) (i32.const 18))"));
    let mut config = RunConfig::default();
    config.timeout = Some(Duration::from_millis(100));
    config.teardown_grace = Duration::from_millis(200);
    config.stdout = wasithreads::Output::Callback(Arc::new(|_, _| std::thread::sleep(Duration::from_secs(3))));
    let log = diagnostics(&mut config);
    let (exit, took) = run_watched(&module, &config);
    assert_eq!(exit.kind, ExitKind::Timeout, "{exit:?}");
    assert_eq!(exit.unstopped, vec![0], "{exit:?}");
    assert!(took < Duration::from_millis(2500), "the run waited for the callback: {took:?}");
    let log = log.lock().unwrap();
    assert!(log.iter().any(|(tid, m)| *tid == 0 && m.contains("had not stopped")), "{log:?}");
}

#[test]
fn try_wait_alone_enforces_the_timeout() {
    let engine = engine();
    let module = load(&engine, "(module (memory (export \"memory\") 1) (func (export \"_start\") (loop $l (br $l))))");
    let exit = within(Duration::from_secs(60), move || {
        let mut config = RunConfig::default();
        config.timeout = Some(Duration::from_millis(50));
        let run = Run::start(&module, &config).unwrap();
        loop {
            if let Some(exit) = run.try_wait() {
                return exit;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    assert_eq!(exit.kind, ExitKind::Timeout, "{exit:?}");
}

#[test]
fn epoch_interruption_stops_busy_code_too() {
    let engine = wasithreads::Engine::new(&EngineConfig { epoch_interruption: true, ..Default::default() }).unwrap();
    let module = load(&engine, &common::guest(&format!("{} (loop $l (br $l))", common::spawn_all(&[common::SPIN]))));
    let exit = within(Duration::from_secs(60), move || {
        let run = Run::start(&module, &RunConfig::default()).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        run.cancel();
        run.wait()
    });
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
}
