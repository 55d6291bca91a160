//! The run's semantics with hand-written WAT guests: spawning (tids, arguments, the thread
//! limit, failed spawns), how a run ends (main returning, `proc_exit` from any thread, a
//! trap), atomics after the rewrite, and many host threads sharing one engine.

use std::time::Duration;

use crate::common::*;
use wasithreads::{EngineConfig, ExitKind, RunConfig, RunExit, ThreadExit};

/// `thread-spawn` gives the new thread the next tid (1) and the spawn argument, as
/// wasi-threads says; each thread's end reaches the exit callback with its tid.
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

/// Main returning from `_start` ends the run with code 0 even while other threads spin,
/// wait or sleep: those are terminated, not waited for (wasi-threads: the process ends).
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

/// `proc_exit` in main ends the run with its code and terminates threads blocked in a
/// spin, an atomic wait (32 and 64 bit) or a sleep.
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

/// `proc_exit` in a spawned thread ends the whole run with its code and tid, main
/// included (it is the process's exit, not the thread's).
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

/// A trap in a spawned thread ends the run as a trap naming that thread and the trap,
/// with a backtrace naming the function; the other threads are terminated.
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

/// A spawn past `max_threads` returns a negative errno to the guest, which can go on:
/// the limit is not a trap.
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

/// A spawn fails (a negative result the guest can act on) rather than the run trapping
/// when the module has no usable `wasi_thread_start`: none at all, or one of the wrong
/// type. Each row: what the export is, and the export spliced into the guest.
#[test]
fn a_spawn_without_a_usable_thread_start_fails_and_the_guest_goes_on() {
    let e = engine();
    for (row, thread_start) in [
        ("no wasi_thread_start", ""),
        ("a wasi_thread_start of the wrong type", r#"(func (export "wasi_thread_start") (param i32))"#),
    ] {
        let m = load(&e, &spawn_failure_guest(thread_start));
        let (exit, _) = run_watched(&m, &RunConfig::default());
        assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 1, tid: 0, message: None, unstopped: vec![] }, "{row}");
    }
}

/// The run's timeout ends a run whose threads all spin, with the timeout result.
#[test]
fn timeout_stops_a_spinning_guest() {
    let e = engine();
    let m = load(&e, &guest(&format!("{} (loop $l (br $l))", spawn_all(&[SPIN, WAIT_FOREVER]))));
    let mut c = RunConfig::default();
    c.timeout = Some(std::time::Duration::from_millis(200));
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit, RunExit { kind: ExitKind::Timeout, code: 0, tid: -1, message: None, unstopped: vec![] });
}

/// The shared memory may be imported under any module and field name, not only
/// `env.memory`: toolchains differ.
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

/// Unbounded recursion is a "call stack exhausted" trap of the thread that overflowed
/// (main or a spawned thread), never a crash of the host.
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

/// Engines and modules are shared between host threads: four host threads run the same
/// module 25 times each at once, each run with its own result.
#[test]
fn many_host_threads_share_one_engine_and_module() {
    // Bounded: a deadlock fails this test instead of hanging the suite.
    within(Duration::from_secs(120), || {
        let e = engine();
        let m = load(
            &e,
            &guest(&format!("{} (call $proc_exit (i32.const 21))", spawn_all(&[WAIT_FOREVER, SLEEP_HOUR, SPIN]))),
        );
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
    });
}

/// A plain WASI module with no threads and no shared memory runs too, its arguments
/// arriving through WASI.
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

/// The rewritten atomics (waits and notify go through the host to be interruptible) keep
/// Wasm's semantics: a wait on a mismatching value returns 1, timeouts return 2, a notify
/// with no waiters returns 0, and unaligned or out-of-bounds waits and notifies trap as in
/// Wasm.
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

/// `memory.atomic.notify` wakes exactly the number of waiters asked for and returns how
/// many it woke.
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

/// A start function that recurses 100 frames deep and then spawns a thread, whose
/// instance runs the same start function: instantiations must not nest on the spawner's
/// native stack, or the host process would die of a stack overflow.
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

/// Start functions that spawn threads whose instances run the same start function end
/// at the thread limit (one instance per allowed thread, a diagnostic naming the limit),
/// at a small and a large limit, without exhausting the host's stack.
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

/// With `max_threads` 0 a spawn fails at once with `EAGAIN` (-6) and a diagnostic saying
/// the limit is 0, so the host sees why the guest got no thread.
#[test]
fn a_spawn_with_no_possible_thread_fails_at_once_with_a_reason() {
    let engine = engine();
    let module =
        load(&engine, &crate::common::guest("(call $proc_exit (i32.sub (i32.const 0) (call $spawn (i32.const 0))))"));
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

/// A trap in the start function of a spawned thread's instance fails that spawn (the
/// spawner gets an error and a diagnostic), not the whole run.
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

/// An engine's `max_wasm_stack` above 2 MiB works (400 000 frames run), the default 1 MiB
/// is not enough for them, and more than 256 MiB is refused with the reason.
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
    let small = load(&crate::common::engine(), wat);
    let (exit, _) = run_watched(&small, &RunConfig::default());
    assert_eq!(exit.kind, ExitKind::Trap, "1 MiB is not enough: {exit:?}");
    let err = wasithreads::Engine::new(&EngineConfig { max_wasm_stack: 1 << 30, ..Default::default() }).err().unwrap();
    assert!(format!("{err:#}").contains("256 MiB"), "{err:#}");
}
