//! The run semantics of issue 2, through the Rust core with hand-written WAT guests.

mod common;

use common::*;
use wasithreads::{ExitKind, RunConfig, RunExit, ThreadExit};

#[test]
fn spawn_delivers_tid_and_arg() {
    let e = engine();
    // One thread with mode PRINT (6); once it has printed, main exits with tid * 1000 +
    // arg seen by it.
    let m = load(&e, &guest(&format!(
        "{} (call $wait_printed (i32.const 1)) (call $proc_exit (i32.add (i32.mul (i32.load (i32.const 100)) (i32.const 1000)) (i32.load (i32.const 104))))",
        spawn_all(&[PRINT]))));
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 1006, tid: 0, message: None, unstopped: vec![] });
    assert_eq!(exits.sorted(), vec![(0, ThreadExit::Exited(1006)), (1, ThreadExit::Returned)]);
}

#[test]
fn main_returning_ends_the_run_with_code_zero() {
    let e = engine();
    let m = load(&e, &guest(&spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR, WAIT64_FOREVER])));
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 0, tid: 0, message: None, unstopped: vec![] });
    let got = exits.sorted();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[0], (0, ThreadExit::Returned));
    for (tid, how) in &got[1..] {
        assert!(how.is_terminated(), "thread {tid}: {how:?}");
    }
}

#[test]
fn proc_exit_in_main_stops_blocked_threads() {
    let e = engine();
    let m = load(
        &e,
        &guest(&format!(
            "{} (call $proc_exit (i32.const 7))",
            spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR, WAIT64_FOREVER, SPIN])
        )),
    );
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, took) = run_watched(&m, &c);
    eprintln!("teardown with 5 blocked threads: {took:?}");
    assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 7, tid: 0, message: None, unstopped: vec![] });
    let got = exits.sorted();
    assert_eq!(got[0], (0, ThreadExit::Exited(7)));
    assert!(got[1..].iter().all(|(_, h)| h.is_terminated()), "{got:?}");
    assert_eq!(got.len(), 6);
}

#[test]
fn proc_exit_in_spawned_thread_ends_everything() {
    let e = engine();
    // Main blocks forever itself; thread 4 exits with 33.
    let m = load(
        &e,
        &guest(&format!(
            "{} (drop (call $spawn (i32.const {EXIT_33}))) (call $behave (i32.const {WAIT_FOREVER}))",
            spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR])
        )),
    );
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 33, tid: 4, message: None, unstopped: vec![] });
    let got = exits.sorted();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[4], (4, ThreadExit::Exited(33)));
    assert!(got[0].0 == 0 && got[0].1.is_terminated(), "{got:?}");
}

#[test]
fn trap_in_spawned_thread_reports_tid_and_message() {
    let e = engine();
    let m = load(
        &e,
        &guest(&format!(
            "{} (drop (call $spawn (i32.const {TRAP}))) (call $behave (i32.const {SLEEP_HOUR}))",
            spawn_all(&[WAIT_FOREVER, SPIN])
        )),
    );
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit.kind, ExitKind::Trap);
    assert_eq!(exit.tid, 3);
    let msg = exit.message.unwrap();
    assert!(msg.contains("unreachable"), "{msg}");
    assert!(msg.contains("behave"), "backtrace names the function: {msg}");
    let got = exits.sorted();
    assert!(matches!(&got[3], (3, ThreadExit::Trapped(m)) if m.contains("unreachable")), "{got:?}");
    assert!(got[0].0 == 0 && got[0].1.is_terminated(), "{got:?}");
}

#[test]
fn spawn_past_the_limit_returns_negative_and_the_guest_goes_on() {
    let e = engine();
    // Limit 2: two threads that wait forever, then a third spawn must fail; main exits with
    // 100 + (third spawn result < 0).
    let m = load(
        &e,
        &guest(&format!(
            "{} (local.set $r (call $spawn (i32.const {PRINT})))
           (call $proc_exit (i32.add (i32.const 100) (i32.lt_s (local.get $r) (i32.const 0))))",
            spawn_all(&[WAIT_FOREVER, WAIT_FOREVER])
        )),
    );
    let mut c = RunConfig::default();
    c.limits.max_threads = 2;
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit.code, 101);
}

/// A guest whose main exits with 1 when its one `thread-spawn` fails; `thread_start` is
/// spliced in as its `wasi_thread_start` export (or its absence).
fn spawn_failure_guest(thread_start: &str) -> String {
    format!(
        r#"(module
        (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
        (import "env" "memory" (memory 1 1 shared))
        {thread_start}
        (func (export "_start")
          (call $proc_exit (i32.lt_s (call $spawn (i32.const 0)) (i32.const 0)))))"#
    )
}

#[test]
fn missing_thread_start_makes_spawn_fail_not_trap() {
    let e = engine();
    let m = load(&e, &spawn_failure_guest(""));
    let (exit, _) = run_watched(&m, &RunConfig::default());
    assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 1, tid: 0, message: None, unstopped: vec![] });
}

#[test]
fn timeout_stops_a_spinning_guest() {
    let e = engine();
    let m = load(&e, &guest(&format!("{} (loop $l (br $l))", spawn_all(&[SPIN, WAIT_FOREVER]))));
    let mut c = RunConfig::default();
    c.timeout = Some(std::time::Duration::from_millis(200));
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit, RunExit { kind: ExitKind::Timeout, code: 0, tid: -1, message: None, unstopped: vec![] });
}

#[test]
fn wrongly_typed_thread_start_makes_spawn_fail_not_trap() {
    let e = engine();
    let m = load(&e, &spawn_failure_guest(r#"(func (export "wasi_thread_start") (param i32))"#));
    let (exit, _) = run_watched(&m, &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 1));
}

#[test]
fn memory_may_be_imported_under_any_name() {
    let e = engine();
    // The thread writes 77 through the shared memory; main reads it after waiting.
    let wat = r#"(module
        (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
        (import "somewhere" "else" (memory 1 1 shared))
        (func (export "wasi_thread_start") (param i32 i32)
          (i32.atomic.store (i32.const 0) (i32.const 77))
          (drop (memory.atomic.notify (i32.const 0) (i32.const 1))))
        (func (export "_start")
          (drop (call $spawn (i32.const 0)))
          (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))
          (call $proc_exit (i32.atomic.load (i32.const 0)))))"#;
    let (exit, _) = run_watched(&load(&e, wat), &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 77));
}

#[test]
fn stack_overflow_is_a_trap_in_main_and_in_threads() {
    let e = engine();
    let recurse = "(func $deep (param i32) (result i32) (i32.add (call $deep (local.get 0)) (i32.const 1)))";
    for (tid, body) in
        [(0, "(drop (call $deep (i32.const 0)))"), (1, "(drop (call $spawn (i32.const 0))) (loop $l (br $l))")]
    {
        let wat = format!(
            r#"(module
            (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
            (import "env" "memory" (memory 1 1 shared))
            {recurse}
            (func (export "wasi_thread_start") (param i32 i32) (drop (call $deep (i32.const 0))))
            (func (export "_start") {body}))"#
        );
        let (exit, _) = run_watched(&load(&e, &wat), &RunConfig::default());
        assert_eq!((exit.kind, exit.tid), (ExitKind::Trap, tid), "{exit:?}");
        let msg = exit.message.unwrap();
        assert!(msg.contains("call stack exhausted"), "{msg}");
    }
}

#[test]
fn many_host_threads_share_one_engine_and_module() {
    let e = engine();
    let m =
        load(&e, &guest(&format!("{} (call $proc_exit (i32.const 21))", spawn_all(&[WAIT_FOREVER, SLEEP_HOUR, SPIN]))));
    let hosts: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let exit = wasithreads::Run::start(&m, &RunConfig::default()).unwrap().wait();
                    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 21));
                }
            })
        })
        .collect();
    for h in hosts {
        h.join().unwrap();
    }
}

#[test]
fn plain_wasi_module_without_threads_runs() {
    let e = engine();
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start")
          (drop (call $sizes (i32.const 0) (i32.const 4)))
          (call $proc_exit (i32.load (i32.const 0)))))"#;
    let mut c = RunConfig::default();
    c.args = vec!["a".into(), "b".into(), "c".into()];
    let (exit, _) = run_watched(&load(&e, wat), &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 3), "argc arrives through the shared context");
}

#[test]
fn rewritten_atomics_keep_wasm_semantics() {
    let e = engine();
    // Exit code = wait32 on a mismatching value (1) * 1 + wait32 timing out (2) * 10
    // + wait64 timing out (2) * 100 + notify with no waiters (0) * 1000.
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (import "env" "memory" (memory 1 1 shared))
        (func (export "_start")
          (i32.store (i32.const 16) (i32.const 5))
          (call $exit (i32.add (i32.add
            (memory.atomic.wait32 (i32.const 16) (i32.const 4) (i64.const -1))
            (i32.mul (i32.const 10) (memory.atomic.wait32 (i32.const 16) (i32.const 5) (i64.const 1000000))))
            (i32.add
              (i32.mul (i32.const 100) (memory.atomic.wait64 (i32.const 24) (i64.const 0) (i64.const 1000)))
              (i32.mul (i32.const 1000) (memory.atomic.notify (i32.const 16) (i32.const 1))))))))"#;
    let (exit, _) = run_watched(&load(&e, wat), &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 221));
    for (what, body) in [
        ("unaligned", "(drop (memory.atomic.wait32 (i32.const 2) (i32.const 0) (i64.const 0)))"),
        ("out of bounds", "(drop (memory.atomic.wait32 (i32.const 65536) (i32.const 0) (i64.const 0)))"),
        ("out of bounds", "(drop (memory.atomic.notify offset=65532 (i32.const 4) (i32.const 1)))"),
        ("unaligned", "(drop (memory.atomic.notify (i32.const 1) (i32.const 1)))"),
    ] {
        let wat = format!(r#"(module (import "env" "memory" (memory 1 1 shared)) (func (export "_start") {body}))"#);
        let (exit, _) = run_watched(&load(&e, &wat), &RunConfig::default());
        assert_eq!(exit.kind, ExitKind::Trap, "{body}");
        assert!(exit.message.as_deref().unwrap().contains(what), "{body}: {exit:?}");
    }
}

#[test]
fn notify_wakes_exactly_count_waiters_and_reports_them() {
    let e = engine();
    // Three threads wait on word 300 (mode 1 of guest.wat); main wakes 2 of them, then
    // exits with how many notify said it woke (2), plus 10 * the second notify's count (1).
    let m = load(&e, &guest(&format!(
        "{} (call $sleep (i64.const 20000000))
           (local.set $r (memory.atomic.notify (i32.const 300) (i32.const 2)))
           (call $proc_exit (i32.add (local.get $r) (i32.mul (i32.const 10) (memory.atomic.notify (i32.const 300) (i32.const 5)))))",
        spawn_all(&[WAIT_FOREVER, WAIT_FOREVER, WAIT_FOREVER]))));
    let (exit, _) = run_watched(&m, &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 12));
}
