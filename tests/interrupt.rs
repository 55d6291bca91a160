//! Interruption points wherever the interrupt page is: the shared memory's reserved page
//! (`module/reserve.rs`, a maximum of at most 32 276 pages) or the one-page memory the rewrite
//! imports (larger maxima, private memories, no memory). Busy threads stop on cancel in
//! each; what a guest sees at the reserved page is what the module docs say.

mod common;

use std::time::Duration;

use common::{cancel_module, engine, load, run_watched, spinners};
use wasithreads::{ExitKind, RunConfig};

/// The reserved page's address (`module/reserve.rs`).
const RESERVED_PAGE: u32 = 0x7E15_0000;

/// Starts `wat`, lets it run 100 ms, cancels; returns the exit, the thread exits and how
/// long the cancel took.
fn cancel(wat: &str) -> (wasithreads::RunExit, Vec<(i32, wasithreads::ThreadExit)>, Duration) {
    cancel_module(&load(&engine(), wat), RunConfig::default(), Duration::from_millis(100))
}

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
    // test of 0x7ffffff0 did not while the page was the last 64 KiB below 2 GiB).
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

#[test]
fn a_module_with_a_reserved_page_imports_no_interrupt_memory() {
    let module = load(&engine(), &spinners(r#"(import "env" "memory" (memory 1 2 shared))"#, 2));
    let imports: Vec<_> = module.wasmtime().imports().map(|i| format!("{}::{}", i.module(), i.name())).collect();
    assert!(!imports.iter().any(|i| i == "wasithreads:internal::interrupt"), "{imports:?}");
    let module = load(&engine(), &spinners(r#"(import "env" "memory" (memory 1 32768 shared))"#, 2));
    let imports: Vec<_> = module.wasmtime().imports().map(|i| format!("{}::{}", i.module(), i.name())).collect();
    assert!(imports.iter().any(|i| i == "wasithreads:internal::interrupt"), "{imports:?}");
}

#[test]
fn memories_around_a_defined_shared_memory_keep_their_data_in_both_placements() {
    // A private memory before and after the shared one the module defines: the rewrite
    // moves the shared memory to an import and renumbers the others (with an interrupt
    // memory or without). Each memory gets its own value in a loop; the sum says each
    // access reached the memory it named.
    for pages in [2, 32768] {
        let wat = format!(
            r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory $a 1)
  (memory $s (export "memory") 1 {pages} shared)
  (memory $b 1)
  (data (memory $s) (i32.const 8) "\03")
  (func (export "_start") (local $i i32)
    (loop $l
      (i32.store $a (i32.const 0) (i32.add (i32.load $a (i32.const 0)) (i32.const 1)))
      (i32.store $b (i32.const 0) (i32.add (i32.load $b (i32.const 0)) (i32.const 10)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 2))))
    (call $exit (i32.add (i32.load $s (i32.const 8))
                  (i32.add (i32.load $a (i32.const 0)) (i32.load $b (i32.const 0)))))))"#
        );
        let exit = run_watched(&load(&engine(), &wat), &RunConfig::default()).0;
        assert_eq!((exit.kind, exit.code), (ExitKind::Code, 3 + 2 + 20), "{pages} pages: {exit:?}");
    }
}

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
