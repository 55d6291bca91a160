//! Interruption points wherever the interrupt page is: the shared memory's reserved page
//! (`src/interrupt.rs`, a 32-bit shared memory whose maximum is 1 to 32 276 pages:
//! readable while the run goes on, PROT_NONE once it ends) or the one-page memory the
//! rewrite imports (larger maxima, private memories, no memory). Busy threads stop on
//! cancel in each; what a guest sees at the reserved page is what the module docs say;
//! serialized modules keep their page. Tests that could crash the host process (a fault
//! in host code, or a wasm fault Wasmtime does not recognise) run in a child process.

use std::time::{Duration, Instant};

use crate::common::child::isolated;
use crate::common::*;
use wasithreads::{Engine, EngineConfig, ExitKind, Module, Run, RunConfig, RunExit};

/// The reserved page's address (`src/interrupt.rs`).
const RESERVED_PAGE: u32 = 0x7E15_0000;

/// Starts `wat`, lets it run 100 ms, cancels; returns the exit, the thread exits and how
/// long the cancel took.
fn cancel(wat: &str) -> (wasithreads::RunExit, Vec<(i32, wasithreads::ThreadExit)>, Duration) {
    cancel_module(&load(&engine(), wat), RunConfig::default(), Duration::from_millis(100))
}

/// Spinning threads stop on cancel whatever the shared memory's maximum (0 to 65 536
/// pages, imported or defined): from 1 to 32 276 pages through the reserved page, otherwise
/// through the imported interrupt page.
#[test]
fn busy_threads_stop_whatever_the_shared_memory_maximum() {
    // 1 page .. 32276 pages: the reserved page; 0 pages, 32277 (ending at the page),
    // 32768 (2 GiB) and 65536 (4 GiB) use the imported interrupt page. Imported and
    // defined memories.
    for pages in [0u32, 1, 2, 300, 32276, 32277, 32768, 65536] {
        for memory in [
            format!(r#"(import "env" "memory" (memory {} {pages} shared))"#, pages.min(1)),
            format!(r#"(memory (export "memory") {} {pages} shared)"#, pages.min(1)),
        ] {
            let (exit, threads, took) = cancel(&spinners(&memory, 2));
            assert_eq!(exit.kind, ExitKind::Cancelled, "{memory}: {exit:?}");
            assert!(exit.unstopped.is_empty(), "{memory}: {exit:?}");
            assert!(took < Duration::from_secs(1), "{memory}: cancel took {took:?}");
            assert_eq!(threads.len(), 3, "{memory}: {threads:?}");
            assert!(threads.iter().all(|(_, how)| how.is_terminated()), "{memory}: {threads:?}");
        }
    }
}

/// Busy code in a module without a shared memory (no memory, or a private one, even of
/// 4 GiB maximum) stops on cancel too: such modules get the imported interrupt page.
#[test]
fn busy_code_without_a_shared_memory_stops_too() {
    for memory in ["", "(memory (export \"memory\") 1)", "(memory (export \"memory\") 1 65536)"] {
        let wat = format!("(module {memory} (func (export \"_start\") (loop $l (br $l))))");
        let (exit, threads, took) = cancel(&wat);
        assert_eq!(exit.kind, ExitKind::Cancelled, "{memory}: {exit:?}");
        assert!(took < Duration::from_secs(1), "{memory}: cancel took {took:?}");
        assert!(threads.len() == 1 && threads[0].1.is_terminated(), "{memory}: {threads:?}");
    }
}

/// `_start` does `body` on a shared memory of 16 pages, then exits with the i32 left.
fn on_memory(body: &str) -> wasithreads::RunExit {
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 1 16 shared))
  (func (export "_start") (call $exit {body})))"#
    );
    run_watched(&load(&engine(), &wat), &RunConfig::default()).0
}

/// The one documented difference from Wasmtime: loads from the reserved page read zeros
/// while the run goes on. Everything else out of bounds still traps: stores to the page,
/// loads before, after and straddling it, the addresses tests use to provoke a trap, and a
/// memory grown to its maximum does not reach it.
#[test]
fn the_reserved_page_reads_zeros_and_everything_else_out_of_bounds_traps() {
    // The documented difference: a load from the reserved page reads zeros while the
    // run goes on (an out-of-bounds load, which traps on Wasmtime).
    let exit = on_memory(&format!("(i32.add (i32.const 7) (i32.load (i32.const {RESERVED_PAGE})))"));
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 7), "{exit:?}");
    // It is 64 KiB: its last word reads zeros too, the byte after it traps.
    let exit = on_memory(&format!("(i32.add (i32.const 7) (i32.load offset=65532 (i32.const {RESERVED_PAGE})))"));
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 7), "its last word: {exit:?}");
    let exit = on_memory(&format!("(i32.load8_u offset=65536 (i32.const {RESERVED_PAGE}))"));
    assert_eq!(exit.kind, ExitKind::Trap, "the byte after it: {exit:?}");
    // The addresses tests pick to provoke an out-of-bounds load trap (the Go binding's
    // tests load 0x7ffffff0) trap: the page is not at the end of the 2 GiB range.
    for address in ["0x7ffffff0", "0x7ffffffc", "0x7fff0000", "0x80000000", "0x40000000", "-4", "-65536"] {
        let exit = on_memory(&format!("(i32.load (i32.const {address}))"));
        assert_eq!(exit.kind, ExitKind::Trap, "{address}: {exit:?}");
    }
    for body in [
        // Stores to it trap.
        format!("(i32.store (i32.const {RESERVED_PAGE}) (i32.const 1)) (i32.const 0)"),
        format!("(i32.atomic.store (i32.const {RESERVED_PAGE}) (i32.const 1)) (i32.const 0)"),
        // Loads just before it, just after it, past the maximum, past 4 GiB trap.
        format!("(i32.load (i32.const {}))", RESERVED_PAGE - 4),
        format!("(i32.load8_u (i32.const {}))", RESERVED_PAGE + 65536),
        "(i32.load (i32.const 0x100000))".to_string(),
        "(i32.load offset=4294967295 (i32.const 1))".to_string(),
        // A load that straddles the page's start.
        format!("(i32.load (i32.const {}))", RESERVED_PAGE - 2),
        // Growing the memory to its maximum does not reach it.
        format!("(drop (memory.grow (i32.const 15))) (i32.load (i32.const {}))", RESERVED_PAGE - 4),
    ] {
        let exit = on_memory(&body);
        assert_eq!(exit.kind, ExitKind::Trap, "{body}: {exit:?}");
        let msg = exit.message.clone().unwrap_or_default();
        assert!(msg.contains("out of bounds"), "{body}: {msg}");
    }
    // In bounds memory is untouched by any of this.
    let exit = on_memory("(i32.store (i32.const 65532) (i32.const 5)) (i32.load (i32.const 65532))");
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 5), "{exit:?}");
}

/// A module whose shared memory has a reserved page does not import the interrupt memory
/// (one import fewer for every instance); one with a 2 GiB maximum does.
#[test]
fn a_module_with_a_reserved_page_imports_no_interrupt_memory() {
    let module = load(&engine(), &spinners(r#"(import "env" "memory" (memory 1 2 shared))"#, 2));
    let imports: Vec<_> = module.wasmtime().imports().map(|i| format!("{}::{}", i.module(), i.name())).collect();
    assert!(!imports.iter().any(|i| i == "wasithreads:internal::interrupt"), "{imports:?}");
    let module = load(&engine(), &spinners(r#"(import "env" "memory" (memory 1 32768 shared))"#, 2));
    let imports: Vec<_> = module.wasmtime().imports().map(|i| format!("{}::{}", i.module(), i.name())).collect();
    assert!(imports.iter().any(|i| i == "wasithreads:internal::interrupt"), "{imports:?}");
}

/// A guest that reads the reserved page itself just before a loop is still stopped:
/// Cranelift may merge a plain load with an earlier one of the same address, so the
/// interruption points must not be plain loads that such a read could absorb.
#[test]
fn a_guest_reading_the_reserved_page_before_a_loop_is_still_stopped() {
    // Cranelift merges a plain load with an earlier load of the same address when nothing
    // is stored in between; a point that were a plain load at the reserved page could so
    // be merged into the guest's own read of the page just before a loop that stores
    // nothing, and the loop would run on with no point. Every such loop must still stop.
    for prelude in [
        format!("(drop (i32.load (i32.const {RESERVED_PAGE})))"),
        format!("(drop (i32.load (i32.const {})))", RESERVED_PAGE + 4),
        format!("(drop (i32.atomic.load (i32.const {RESERVED_PAGE})))"),
        format!("(drop (i64.load (i32.const {RESERVED_PAGE})))"),
    ] {
        let wat = format!(
            r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 16 shared))
  (func $spin {prelude} (loop $l {prelude} (br $l)))
  (func (export "wasi_thread_start") (param i32 i32) (call $spin))
  (func (export "_start") (drop (call $spawn (i32.const 0))) (call $spin)))"#
        );
        let (exit, threads, took) = cancel(&wat);
        assert_eq!(exit.kind, ExitKind::Cancelled, "{prelude}: {exit:?}");
        assert!(exit.unstopped.is_empty() && took < Duration::from_secs(1), "{prelude}: {exit:?} after {took:?}");
        assert!(threads.len() == 2 && threads.iter().all(|(_, how)| how.is_terminated()), "{prelude}: {threads:?}");
    }
}

/// Asserts a cancelled run of `threads + 1` spinners ended promptly, every thread stopped.
/// (`n == 0`: any number of threads, for cancels that may come before the spawns.)
fn assert_stopped(
    what: &str,
    (exit, threads, took): &(RunExit, Vec<(i32, wasithreads::ThreadExit)>, Duration),
    n: usize,
) {
    assert_eq!(exit.kind, ExitKind::Cancelled, "{what}: {exit:?}");
    assert!(exit.unstopped.is_empty(), "{what}: {exit:?}");
    assert!(*took < Duration::from_secs(1), "{what}: cancel took {took:?}");
    assert!(if n == 0 { !threads.is_empty() } else { threads.len() == n }, "{what}: {threads:?}");
    assert!(threads.iter().all(|(_, how)| how.is_terminated()), "{what}: {threads:?}");
}

/// `_start` exits with the i32 `body` leaves, on the shared memory `memory` (WAT).
fn exit_with(memory: &str, extra: &str, body: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  {memory}
  {extra}
  (func (export "_start") (call $exit {body})))"#
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Code(i32),
    /// A trap whose message says "out of bounds".
    OutOfBounds,
    /// A trap or a non-zero WASI errno (a bad pointer is either, depending on the call).
    Refused,
}

fn outcome(exit: &RunExit, want: Want) -> bool {
    match want {
        Want::Code(c) => exit.kind == ExitKind::Code && exit.code == c,
        Want::OutOfBounds => {
            exit.kind == ExitKind::Trap && exit.message.as_deref().unwrap_or_default().contains("out of bounds")
        }
        Want::Refused => exit.kind == ExitKind::Trap || (exit.kind == ExitKind::Code && exit.code != 0),
    }
}

fn quiet() -> RunConfig {
    let mut c = RunConfig::default();
    c.stdout = wasithreads::Output::Null;
    c.stdin = wasithreads::Input::Null;
    c
}

/// Busy threads stop within a second on cancel for every memory shape at the edges of
/// the reserved-page rule: a 0-page memory of maximum 1 (maximum 0 is
/// `a_shared_memory_of_maximum_zero_can_run_loops`), 32276 and 32277 pages at full size
/// (the last maximum with the page, the first without), maxima just around them, a memory whose maximum
/// `RunConfig::max_memory` lowers, a defined shared memory between private memories, and
/// 98 private memories next to the shared one (the documented 100 with the interrupt
/// import or without).
#[test]
fn busy_threads_stop_for_every_memory_shape() {
    let engine = engine();
    let privates: String = (0..98).map(|i| format!("(memory $p{i} 1)")).collect();
    let shapes: Vec<(String, Option<u64>)> = vec![
        (r#"(import "env" "memory" (memory 0 1 shared))"#.into(), None),
        (r#"(memory (export "memory") 0 1 shared)"#.into(), None),
        (r#"(import "env" "memory" (memory 32276 32276 shared))"#.into(), None),
        (r#"(memory (export "memory") 32276 32276 shared)"#.into(), None),
        (r#"(import "env" "memory" (memory 32277 32277 shared))"#.into(), None),
        (r#"(import "env" "memory" (memory 1 32276 shared))"#.into(), None),
        (r#"(import "env" "memory" (memory 1 32768 shared))"#.into(), None),
        (r#"(import "env" "memory" (memory 1 32277 shared))"#.into(), Some(128 << 10)),
        (r#"(import "env" "memory" (memory 1 65536 shared))"#.into(), Some(128 << 10)),
        (r#"(memory $a 1) (memory $s (export "memory") 1 2 shared) (memory $b 1)"#.into(), None),
        (format!(r#"(import "env" "memory" (memory 1 2 shared)) {privates}"#), None),
        (format!(r#"{privates} (memory $s (export "memory") 1 2 shared)"#), None),
    ];
    for (memory, max_memory) in shapes {
        let module = load(&engine, &spinners(&memory, 2));
        let mut config = RunConfig::default();
        config.limits.max_memory = max_memory;
        let what = format!("{} (max_memory {max_memory:?})", &memory[..memory.len().min(70)]);
        assert_stopped(&what, &cancel_module(&module, config, Duration::from_millis(100)), 3);
    }
}

/// With epoch interruption (`EngineConfig::epoch_interruption`) the module still has
/// interruption points on the reserved page, which must be readable (not PROT_NONE) for
/// the whole run; busy threads stop by the epoch on cancel, and the page reads zeros as
/// documented.
#[test]
fn epoch_interruption_with_a_reserved_page() {
    let engine = Engine::new(&EngineConfig { epoch_interruption: true, ..EngineConfig::default() }).unwrap();
    let module = load(&engine, &spinners(r#"(import "env" "memory" (memory 1 2 shared))"#, 2));
    assert_stopped("epoch", &cancel_module(&module, RunConfig::default(), Duration::from_millis(100)), 3);
    let wat = exit_with(
        r#"(import "env" "memory" (memory 1 2 shared))"#,
        "",
        &format!("(i32.add (i32.const 7) (i32.load (i32.const {RESERVED_PAGE})))"),
    );
    let exit = run_watched(&load(&engine, &wat), &RunConfig::default()).0;
    assert!(outcome(&exit, Want::Code(7)), "{exit:?}");
}

/// A thread that traps (`unreachable`, or a store to the reserved page) while others spin
/// ends the run with that trap; the spinners stop (their interruption points fault at the
/// closed page and are reported as terminated, not as traps); with a core dump path the
/// dump is written. In a child process: a fault Wasmtime does not attribute to a memory of
/// the store would abort the host.
#[test]
fn a_trap_in_one_thread_stops_the_spinners_and_dumps_core() {
    if !isolated("a_trap_in_one_thread_stops_the_spinners_and_dumps_core") {
        return;
    }
    let dir = temp_dir("attack-reserved-core");
    for (i, trap) in
        ["(unreachable)", &format!("(i32.store (i32.const {RESERVED_PAGE}) (i32.const 1))")].iter().enumerate()
    {
        let wat = format!(
            r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (import "env" "memory" (memory 1 4 shared))
  (func $spin (loop $l (br $l)))
  (func (export "wasi_thread_start") (param i32 i32)
    (if (i32.eq (local.get 1) (i32.const 1))
      (then
        ;; wait until the spinners run, then trap
        (loop $w (br_if $w (i32.lt_u (i32.atomic.load (i32.const 0)) (i32.const 2))))
        {trap}))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (call $spin))
  (func (export "_start")
    (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 1)))
    (call $spin)))"#
        );
        let module = load(&engine(), &wat);
        let path = dir.join(format!("core{i}"));
        let mut config = RunConfig::default();
        config.coredump_path = Some(path.clone());
        let exits = Exits::default();
        exits.install(&mut config);
        let (exit, took) = run_watched(&module, &config);
        assert_eq!(exit.kind, ExitKind::Trap, "{trap}: {exit:?}");
        assert!(took < Duration::from_secs(5), "{trap}: {took:?}");
        let threads = exits.sorted();
        assert_eq!(threads.len(), 4, "{trap}: {threads:?}");
        let trapped = threads.iter().filter(|(_, how)| matches!(how, wasithreads::ThreadExit::Trapped(_))).count();
        assert_eq!(trapped, 1, "{trap}: exactly the trapping thread traps: {threads:?}");
        assert!(std::fs::metadata(&path).map(|m| m.len() > 0).unwrap_or(false), "{trap}: no core dump at {path:?}");
    }
}

/// The main thread calling `proc_exit` while spawned threads spin ends the run with its
/// code within a second, every thread stopped.
#[test]
fn proc_exit_stops_spinning_threads_at_the_reserved_page() {
    let wat = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 1 2 shared))
  (func (export "wasi_thread_start") (param i32 i32)
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (loop $l (br $l)))
  (func (export "_start")
    (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 0)))
    (loop $w (br_if $w (i32.lt_u (i32.atomic.load (i32.const 0)) (i32.const 2))))
    (call $exit (i32.const 3))))"#;
    let (exit, took) = run_watched(&load(&engine(), wat), &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 3), "{exit:?}");
    assert!(exit.unstopped.is_empty() && took < Duration::from_secs(1), "{exit:?} {took:?}");
}

/// Threads growing the memory one page at a time up to its maximum of 32276 pages (the
/// largest with the reserved page, one inaccessible page below it), racing with a cancel at various moments, never
/// hang, crash or leave a thread behind: Wasmtime's growth never touches the reserved
/// page, and the fault at a closed page is recognised while another thread holds the
/// memory's lock to grow it.
#[test]
fn growth_to_the_maximum_racing_a_cancel() {
    if !isolated("growth_to_the_maximum_racing_a_cancel") {
        return;
    }
    let wat = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 32276 shared))
  (func $grow
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    ;; then read the last word of the full memory forever
    (loop $s (drop (i32.load (i32.const 0x7E13FFFC))) (br $s)))
  (func (export "wasi_thread_start") (param i32 i32) (call $grow))
  (func (export "_start")
    (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 0)))
    (call $grow)))"#;
    let module = load(&engine(), wat);
    for (i, ms) in [0u64, 1, 2, 5, 10, 20, 40, 80, 160].iter().enumerate() {
        let r = cancel_module(&module, RunConfig::default(), Duration::from_millis(*ms));
        assert_stopped(&format!("round {i}, cancel after {ms} ms"), &r, if *ms >= 40 { 4 } else { 0 });
    }
}

/// Cancelling one run closes only its own reserved page: other runs of the same module
/// (each with its own memory) keep going, then finish with their own result.
#[test]
fn cancelling_one_run_leaves_the_others_of_the_module_running() {
    // Bounded: a deadlock fails this test instead of hanging the suite.
    within(Duration::from_secs(120), || {
        let wat = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "memory" (memory 1 2 shared))
  (func (export "wasi_thread_start") (param i32 i32) (loop $l (br $l)))
  (func (export "_start")
    (local $i i32)
    ;; count to 300 M (past the cancel of the other runs, every loop head an
    ;; interruption point), then exit 9
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 300000000))))
    (call $exit (i32.const 9))))"#;
        let module = load(&engine(), wat);
        within(Duration::from_secs(120), move || {
            let runs: Vec<Run> = (0..4).map(|_| Run::start(&module, &RunConfig::default()).unwrap()).collect();
            std::thread::sleep(Duration::from_millis(50));
            let t = Instant::now();
            runs[0].cancel();
            runs[1].cancel();
            for r in &runs[..2] {
                assert_eq!(r.wait().kind, ExitKind::Cancelled);
            }
            assert!(t.elapsed() < Duration::from_secs(2), "cancel took {:?}", t.elapsed());
            for r in &runs[2..] {
                let exit = r.wait();
                assert_eq!((exit.kind, exit.code), (ExitKind::Code, 9), "an uncancelled run: {exit:?}");
            }
        });
    });
}

/// Many concurrent runs of one module, cancelled all at once, all end within a second or
/// so (each closes its own page).
#[test]
fn many_concurrent_runs_all_stop() {
    let module = load(&engine(), &spinners(r#"(import "env" "memory" (memory 1 100 shared))"#, 1));
    within(Duration::from_secs(60), move || {
        let runs: Vec<Run> = (0..16).map(|_| Run::start(&module, &RunConfig::default()).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        runs.iter().for_each(Run::cancel);
        for r in &runs {
            let exit = r.wait();
            assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
            assert!(exit.unstopped.is_empty(), "{exit:?}");
        }
        assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    });
}

/// Lines of /proc/self/maps (one per mapping: a run's page made readable splits its
/// memory's mapping; one left behind is a leaked reservation of 4 GiB).
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

/// The process's virtual size in KiB.
fn vm_size_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs started and cancelled (or dropped unwaited, or failing to start after their
/// memory exists) in a tight loop leak no mapping, no address space, no thread, no
/// descriptor. In a child process: it counts the process's resources.
#[test]
fn start_and_cancel_in_a_tight_loop_leaks_nothing() {
    if !isolated("start_and_cancel_in_a_tight_loop_leaks_nothing") {
        return;
    }
    let engine = engine();
    let module = load(&engine, &spinners(r#"(import "env" "memory" (memory 1 2 shared))"#, 2));
    let round = |n: usize| {
        for i in 0..n {
            let run = Run::start(&module, &RunConfig::default()).unwrap();
            match i % 3 {
                0 => {
                    run.cancel();
                    assert_eq!(run.wait().kind, ExitKind::Cancelled);
                }
                1 => drop(run),
                _ => {
                    std::thread::sleep(Duration::from_millis(1));
                    run.cancel();
                    drop(run);
                }
            }
            // A start that fails after the memory and its page were made.
            let mut bad = RunConfig::default();
            bad.preopens.push(wasithreads::Preopen {
                host: "/nonexistent/wasithreads".into(),
                guest: "/x".into(),
                read_only: true,
            });
            assert!(Run::start(&module, &bad).is_err());
        }
    };
    // Warm up (malloc arenas, pool threads), then compare two later points: a leak per
    // run shows as growth between them.
    round(60);
    std::thread::sleep(Duration::from_millis(1200));
    round(60);
    std::thread::sleep(Duration::from_millis(1200));
    let before = (mappings(), vm_size_kib(), os_threads(), open_fds());
    round(240);
    std::thread::sleep(Duration::from_millis(1200));
    let after = (mappings(), vm_size_kib(), os_threads(), open_fds());
    println!("before {before:?} after {after:?}");
    // Slack for malloc arenas (64 MiB, two mappings each) made as threads come and go;
    // one leaked memory would be 4 GiB of address space, 240 of them hundreds of maps.
    assert!(after.0 <= before.0 + 16, "mappings {} -> {}", before.0, after.0);
    assert!(after.1 <= before.1 + (1 << 20), "VmSize {} KiB -> {} KiB", before.1, after.1);
    assert!(after.2 <= before.2 + 2, "threads {} -> {}", before.2, after.2);
    assert!(after.3 <= before.3, "fds {} -> {}", before.3, after.3);
}

/// Loads that start in bounds and straddle the end of a memory grown to its maximum
/// (`i32.load` at end - 2, `i64.load` at end - 4, `v128.load` at end - 8) trap "out of
/// bounds", as Wasm requires. Loads of 32-bit memories have no bounds check, so this holds
/// only if an inaccessible page separates the memory from a readable reserved page: the
/// reserved page goes only to memories whose maximum leaves that gap (at most 32 276
/// pages). Checked at 32 277 pages (the imported page) and 32 276 (the reserved page,
/// with the gap).
#[test]
fn loads_straddling_the_end_of_a_full_memory_trap() {
    let engine = engine();
    let mut wrong = Vec::new();
    for pages in [32277u32, 32276] {
        let end = pages << 16;
        let full = format!(r#"(import "env" "memory" (memory {pages} {pages} shared))"#);
        let grown = format!(r#"(import "env" "memory" (memory 1 {pages} shared))"#);
        let grow = format!("(drop (memory.grow (i32.const {})))", pages - 1);
        // Sanity: the last in-bounds word is readable, and written data reads back.
        let last = end - 4;
        let body = format!("(i32.store (i32.const {last}) (i32.const 5)) (i32.load (i32.const {last}))");
        let exit = run_watched(&load(&engine, &exit_with(&full, "", &body)), &RunConfig::default()).0;
        assert!(outcome(&exit, Want::Code(5)), "{exit:?}");
        for (memory, prefix) in [(&full, ""), (&grown, grow.as_str())] {
            for load_ in [
                format!("(i32.load (i32.const {}))", end - 2),
                format!("(i32.load16_u (i32.const {}))", end - 1),
                format!("(i32.wrap_i64 (i64.load (i32.const {})))", end - 4),
                format!("(i32x4.extract_lane 0 (v128.load (i32.const {})))", end - 8),
                format!("(i32.load offset=2 (i32.const {}))", end - 4),
            ] {
                let wat = exit_with(memory, "", &format!("{prefix} (i32.add (i32.const 7) {load_})"));
                let exit = run_watched(&load(&engine, &wat), &RunConfig::default()).0;
                if !outcome(&exit, Want::OutOfBounds) {
                    wrong.push(format!("{memory} {prefix} {load_}: {:?} {} {:?}", exit.kind, exit.code, exit.message));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "out-of-bounds loads that did not trap:\n{}", wrong.join("\n"));
}

/// Everything but a plain load on the reserved page traps or is refused, without harming
/// the host: stores, atomic read-modify-writes and compare-exchanges (PROT_READ page),
/// `memory.atomic.wait32/64` and `notify` (host functions that check bounds), bulk
/// memory (`memory.fill/copy/init`, bounds-checked libcalls), and WASI calls that make
/// the host write or read guest memory there (`random_get`, `fd_read`, `fd_write`,
/// `clock_time_get`, `args_sizes_get`, an iovec array on the page), both on the page and
/// straddling the end of a full 32276-page memory. Loads from a *private* memory at the
/// same address trap as usual. In a child process: a host write to the page would be a
/// SIGSEGV in host code.
#[test]
fn hostile_operations_on_the_reserved_page_trap_or_are_refused() {
    use Want::*;
    if !isolated("hostile_operations_on_the_reserved_page_trap_or_are_refused") {
        return;
    }
    let small = r#"(import "env" "memory" (memory 1 16 shared))"#;
    let full = r#"(import "env" "memory" (memory 32276 32276 shared))"#;
    let r = RESERVED_PAGE;
    let end = 32276u32 << 16;
    let e = end - 16; // 16 bytes before the end of a full memory
    let data = r#"(data $d "abcdefgh")"#;
    let cases: Vec<(&str, String, Want)> = vec![
        (small, format!("(i32.atomic.rmw.add (i32.const {r}) (i32.const 1))"), OutOfBounds),
        (small, format!("(i32.atomic.rmw.cmpxchg (i32.const {r}) (i32.const 0) (i32.const 1))"), OutOfBounds),
        (small, format!("(i32.wrap_i64 (i64.atomic.rmw.xchg (i32.const {r}) (i64.const 1)))"), OutOfBounds),
        (small, format!("(i64.store (i32.const {}) (i64.const 1)) (i32.const 0)", r + 65528), OutOfBounds),
        (small, format!("(memory.atomic.wait32 (i32.const {r}) (i32.const 0) (i64.const 0))"), OutOfBounds),
        (small, format!("(memory.atomic.wait64 (i32.const {r}) (i64.const 0) (i64.const 0))"), OutOfBounds),
        (small, format!("(memory.atomic.notify (i32.const {r}) (i32.const 1))"), OutOfBounds),
        (small, format!("(memory.fill (i32.const {r}) (i32.const 1) (i32.const 4)) (i32.const 0)"), OutOfBounds),
        (small, format!("(memory.copy (i32.const {r}) (i32.const 0) (i32.const 4)) (i32.const 0)"), OutOfBounds),
        (small, format!("(memory.copy (i32.const 0) (i32.const {r}) (i32.const 4)) (i32.const 0)"), OutOfBounds),
        (small, format!("(memory.init $d (i32.const {r}) (i32.const 0) (i32.const 4)) (i32.const 0)"), OutOfBounds),
        (small, format!("(call $random (i32.const {r}) (i32.const 16))"), Refused),
        (small, format!("(call $clock (i32.const 0) (i64.const 0) (i32.const {r}))"), Refused),
        (small, format!("(call $args_sizes (i32.const {r}) (i32.const 0))"), Refused),
        // fd_write of 16 bytes from the page (the host would read it)
        (
            small,
            format!(
                "(i32.store (i32.const 0) (i32.const {r})) (i32.store (i32.const 4) (i32.const 16)) \
                     (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))"
            ),
            Refused,
        ),
        // an iovec array on the page
        (small, format!("(call $fd_write (i32.const 1) (i32.const {r}) (i32.const 1) (i32.const 8))"), Refused),
        (small, format!("(call $fd_read (i32.const 0) (i32.const {r}) (i32.const 1) (i32.const 8))"), Refused),
        // the host's write ending past a full memory
        (full, format!("(call $random (i32.const {e}) (i32.const 32))"), Refused),
        (full, format!("(call $clock (i32.const 0) (i64.const 0) (i32.const {}))", end - 4), Refused),
        (full, format!("(memory.fill (i32.const {e}) (i32.const 1) (i32.const 32)) (i32.const 0)"), OutOfBounds),
        (full, format!("(memory.copy (i32.const 0) (i32.const {e}) (i32.const 32)) (i32.const 0)"), OutOfBounds),
        (full, format!("(memory.atomic.notify (i32.const {r}) (i32.const 1))"), OutOfBounds),
        (full, format!("(i32.store (i32.const {}) (i32.const 1)) (i32.const 0)", end - 2), OutOfBounds),
        (
            full,
            format!(
                "(i32.store (i32.const 0) (i32.const {e})) (i32.store (i32.const 4) (i32.const 32)) \
                     (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))"
            ),
            Refused,
        ),
        (
            full,
            format!(
                "(i32.store (i32.const 0) (i32.const {e})) (i32.store (i32.const 4) (i32.const 32)) \
                     (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))"
            ),
            Refused,
        ),
    ];
    let engine = engine();
    let mut wrong = Vec::new();
    for (memory, body, want) in &cases {
        let wat = exit_with(memory, data, body);
        let mut config = quiet();
        // fd_read needs something to read: 64 bytes of stdin.
        config.stdin = wasithreads::Input::Bytes(vec![b'x'; 64].into());
        let exit = run_watched(&load(&engine, &wat), &config).0;
        if !outcome(&exit, *want) {
            wrong.push(format!("{body}: want {want:?}, got {exit:?}"));
        }
    }
    // A private memory next to the shared one: its 0x7E150000 is out of bounds as ever.
    let wat = exit_with(&format!("{small} (memory $p 1)"), "", &format!("(i32.load $p (i32.const {r}))"));
    let exit = run_watched(&load(&engine, &wat), &quiet()).0;
    if !outcome(&exit, OutOfBounds) {
        wrong.push(format!("private memory load: {exit:?}"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    println!("SURVIVED");
}

/// Custom page sizes: `(pagesize 1)` must not get the reserved page (its 0x7E150000 is
/// not past its maximum), explicit `(pagesize 65536)` may. Either the module is refused
/// cleanly at load, or runs and stops on cancel. A 64-bit shared memory is refused.
#[test]
fn custom_page_sizes_and_memory64_load_or_fail_cleanly() {
    if !isolated("custom_page_sizes_and_memory64_load_or_fail_cleanly") {
        return;
    }
    let engine = engine();
    for memory in [
        r#"(import "env" "memory" (memory 1 2 shared (pagesize 1)))"#,
        r#"(memory (export "memory") 1 2 shared (pagesize 1))"#,
        r#"(import "env" "memory" (memory 1 2 shared (pagesize 65536)))"#,
        r#"(memory (export "memory") 1 2 shared (pagesize 65536))"#,
        r#"(import "env" "memory" (memory i64 1 2 shared))"#,
    ] {
        let wat = spinners(memory, 2);
        let Ok(bytes) = wat::parse_str(&wat) else {
            println!("{memory}: not parsed by wat");
            continue;
        };
        match Module::new(&engine, &bytes) {
            Err(e) => println!("{memory}: refused: {e:#}"),
            Ok(module) => {
                let config = RunConfig::default();
                match Run::start(&module, &config) {
                    Err(e) => println!("{memory}: run refused: {e:#}"),
                    Ok(run) => {
                        std::thread::sleep(Duration::from_millis(100));
                        let t = Instant::now();
                        run.cancel();
                        let exit = within(Duration::from_secs(30), move || run.wait());
                        assert_eq!(exit.kind, ExitKind::Cancelled, "{memory}: {exit:?}");
                        assert!(t.elapsed() < Duration::from_secs(1), "{memory}: {:?}", t.elapsed());
                    }
                }
            }
        }
    }
}

/// `serialize`/`deserialize` keep where interruption points load from: a deserialized
/// module of either placement stops on cancel, reads zeros at the reserved page only when
/// it has one, and bytes with the old header (`wasithreads-mod1`) or a corrupted one are
/// refused with an error.
#[test]
fn serialized_modules_keep_their_interrupt_page() {
    let engine = engine();
    for (pages, reserved) in [(2u32, true), (32276, true), (32277, false), (32768, false)] {
        let memory = format!(r#"(import "env" "memory" (memory 1 {pages} shared))"#);
        let bytes = load(&engine, &spinners(&memory, 2)).serialize().unwrap();
        assert!(bytes.starts_with(b"wasithreads-mod3"), "{:?}", &bytes[..16]);
        // SAFETY: the bytes come from `Module::serialize` on this engine.
        let module = unsafe { Module::deserialize(&engine, &bytes) }.unwrap();
        assert_stopped(
            &format!("{pages} pages"),
            &cancel_module(&module, RunConfig::default(), Duration::from_millis(100)),
            3,
        );
        let wat = exit_with(&memory, "", &format!("(i32.add (i32.const 7) (i32.load (i32.const {RESERVED_PAGE})))"));
        let bytes = load(&engine, &wat).serialize().unwrap();
        // SAFETY: bytes serialized by a wasithreads engine, some damaged on purpose: the wrapper's
        // header, settings and length checks refuse damaged ones before Wasmtime reads them.
        let module = unsafe { Module::deserialize(&engine, &bytes) }.unwrap();
        let exit = run_watched(&module, &RunConfig::default()).0;
        let want = if reserved { Want::Code(7) } else { Want::OutOfBounds };
        assert!(outcome(&exit, want), "{pages} pages: {exit:?}");
        // The old header, and a flipped byte in the header.
        let mut old = bytes.clone();
        old[..16].copy_from_slice(b"wasithreads-mod1");
        // SAFETY: bytes serialized by a wasithreads engine, some damaged on purpose: the wrapper's
        // header, settings and length checks refuse damaged ones before Wasmtime reads them.
        assert!(unsafe { Module::deserialize(&engine, &old) }.is_err(), "{pages}: old format accepted");
        let mut bad = bytes.clone();
        bad[3] ^= 0x20;
        // SAFETY: bytes serialized by a wasithreads engine, some damaged on purpose: the wrapper's
        // header, settings and length checks refuse damaged ones before Wasmtime reads them.
        assert!(unsafe { Module::deserialize(&engine, &bad) }.is_err(), "{pages}: bad header accepted");
        // SAFETY: bytes serialized by a wasithreads engine, some damaged on purpose: the wrapper's
        // header, settings and length checks refuse damaged ones before Wasmtime reads them.
        assert!(unsafe { Module::deserialize(&engine, &bytes[..bytes.len() / 2]) }.is_err(), "{pages}: truncated");
    }
    // An epoch engine refuses bytes of a page engine (different settings) cleanly.
    let epoch = Engine::new(&EngineConfig { epoch_interruption: true, ..EngineConfig::default() }).unwrap();
    let bytes = load(&engine, &spinners(r#"(import "env" "memory" (memory 1 2 shared))"#, 1)).serialize().unwrap();
    // SAFETY: bytes serialized by a wasithreads engine, some damaged on purpose: the wrapper's
    // header, settings and length checks refuse damaged ones before Wasmtime reads them.
    assert!(unsafe { Module::deserialize(&epoch, &bytes) }.is_err(), "epoch engine took page-engine bytes");
}

/// A shared memory of maximum 0 pages (valid Wasm: a module that shares no data but
/// spawns threads) runs its loops: Cranelift compiles every access to a memory of maximum
/// 0 bytes to an unconditional trap, so such a memory must not get the reserved page (its
/// interruption points would all trap); it gets the imported interrupt page. The run's
/// `max_memory` does not matter here: compiled code sees the module's maximum.
#[test]
fn a_shared_memory_of_maximum_zero_can_run_loops() {
    let engine = engine();
    for memory in [r#"(import "env" "memory" (memory 0 0 shared))"#, r#"(memory (export "memory") 0 0 shared)"#] {
        let wat = format!(
            r#"(module
  {memory}
  (func (export "_start") (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))))"#
        );
        let exit = run_watched(&load(&engine, &wat), &RunConfig::default()).0;
        assert!(outcome(&exit, Want::Code(0)), "{memory}: {exit:?}");
    }
}
