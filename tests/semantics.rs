//! The run semantics of issue 2, through the Rust core with hand-written WAT guests.

mod common;

use common::*;
use wasithreads::{ExitKind, RunConfig, RunExit, ThreadExit};

#[test]
fn spawn_delivers_tid_and_arg() {
    let e = engine();
    // One thread with mode PRINT (6); main then exits with tid * 1000 + arg seen by it.
    let m = load(&e, &guest(&format!(
        "{} (call $proc_exit (i32.add (i32.mul (i32.load (i32.const 100)) (i32.const 1000)) (i32.load (i32.const 104))))",
        spawn_all(&[PRINT]))));
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 1006, tid: 0, message: None });
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
    assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 0, tid: 0, message: None });
    let got = exits.sorted();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[0], (0, ThreadExit::Returned));
    for (tid, how) in &got[1..] {
        assert_eq!(how, &ThreadExit::Terminated, "thread {tid}");
    }
}

#[test]
fn proc_exit_in_main_stops_blocked_threads() {
    let e = engine();
    let m = load(&e, &guest(&format!("{} (call $proc_exit (i32.const 7))",
        spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR, WAIT64_FOREVER, SPIN]))));
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, took) = run_watched(&m, &c);
    eprintln!("teardown with 5 blocked threads: {took:?}");
    assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 7, tid: 0, message: None });
    let got = exits.sorted();
    assert_eq!(got[0], (0, ThreadExit::Exited(7)));
    assert!(got[1..].iter().all(|(_, h)| *h == ThreadExit::Terminated), "{got:?}");
    assert_eq!(got.len(), 6);
}

#[test]
fn proc_exit_in_spawned_thread_ends_everything() {
    let e = engine();
    // Main blocks forever itself; thread 4 exits with 33.
    let m = load(&e, &guest(&format!(
        "{} (drop (call $spawn (i32.const {EXIT_33}))) (call $behave (i32.const {WAIT_FOREVER}))",
        spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR]))));
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 33, tid: 4, message: None });
    let got = exits.sorted();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[4], (4, ThreadExit::Exited(33)));
    assert_eq!(got[0], (0, ThreadExit::Terminated));
}

#[test]
fn trap_in_spawned_thread_reports_tid_and_message() {
    let e = engine();
    let m = load(&e, &guest(&format!(
        "{} (drop (call $spawn (i32.const {TRAP}))) (call $behave (i32.const {SLEEP_HOUR}))",
        spawn_all(&[WAIT_FOREVER, SPIN]))));
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
    assert_eq!(got[0], (0, ThreadExit::Terminated));
}

#[test]
fn spawn_past_the_limit_returns_negative_and_the_guest_goes_on() {
    let e = engine();
    // Limit 2: two threads that wait forever, then a third spawn must fail; main exits with
    // 100 + (third spawn result < 0).
    let m = load(&e, &guest(&format!(
        "{} (local.set $r (call $spawn (i32.const {PRINT})))
           (call $proc_exit (i32.add (i32.const 100) (i32.lt_s (local.get $r) (i32.const 0))))",
        spawn_all(&[WAIT_FOREVER, WAIT_FOREVER]))));
    let mut c = RunConfig::default();
    c.max_threads = 2;
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit.code, 101);
}

#[test]
fn missing_thread_start_makes_spawn_fail_not_trap() {
    let e = engine();
    let wat = r#"(module
        (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
        (import "env" "memory" (memory 1 1 shared))
        (func (export "_start")
          (call $proc_exit (i32.lt_s (call $spawn (i32.const 0)) (i32.const 0)))))"#;
    let m = load(&e, wat);
    let (exit, _) = run_watched(&m, &RunConfig::default());
    assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 1, tid: 0, message: None });
}

#[test]
fn timeout_stops_a_spinning_guest() {
    let e = engine();
    let m = load(&e, &guest(&format!("{} (loop $l (br $l))", spawn_all(&[SPIN, WAIT_FOREVER]))));
    let mut c = RunConfig::default();
    c.timeout = Some(std::time::Duration::from_millis(200));
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit, RunExit { kind: ExitKind::Timeout, code: 0, tid: -1, message: None });
}
