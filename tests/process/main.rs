//! The process comes back to where it was: OS threads, descriptors and resident memory
//! after thousands of runs, cancels and spawns.
//!
//! A test binary of its own, apart from `tests/integration`: these tests count
//! process-wide resources and some are sensitive to CPU contention (a spawn racing the
//! exit of the thread it replaces), so no other test may run beside them. Each runs alone
//! in a child process (`common::child::isolated`), one at a time (`SERIAL`).

#[path = "../common/mod.rs"]
mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::child::isolated;
use common::*;
use wasithreads::{ExitKind, Run, RunConfig};

/// One child at a time: children are processes of their own, but they share the CPUs.
static SERIAL: Mutex<()> = Mutex::new(());

/// Each test takes 1-5 s; far longer means a deadlock.
const LIMIT: Duration = Duration::from_secs(180);

/// Waits (bounded) for helper threads to be gone: a background supervisor still returning
/// after publishing its result, and idle pool threads (they exit after 0.5 s idle).
fn settle(threads: usize) -> usize {
    for _ in 0..1000 {
        if os_threads() <= threads {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    os_threads()
}

/// A thousand runs (alternately an exit and a trap, each with threads spinning, waiting
/// and sleeping) leave the process's OS threads and descriptors where they were: a host
/// that runs guests all day must not leak per run.
#[test]
fn thousand_runs_leave_no_threads_or_fds_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !isolated("thousand_runs_leave_no_threads_or_fds_behind") {
        return;
    }
    within(LIMIT, || {
        let e = engine();
        // Each run: three threads (one spinning, one waiting forever, one sleeping), then a trap
        // or an exit, alternating by run.
        let exit_mod = load(
            &e,
            &guest(&format!("{} (call $proc_exit (i32.const 3))", spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR]))),
        );
        let trap_mod = load(&e, &guest(&format!("{} unreachable", spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR]))));
        let c = RunConfig::default();
        // Warm up once so lazily created process-wide state exists before counting, and let
        // the warm-up's pool threads go idle and exit.
        let baseline = os_threads();
        run_watched(&exit_mod, &c);
        let (threads0, fds0) = (settle(baseline), open_fds());
        for i in 0..1000 {
            let m = if i % 2 == 0 { &exit_mod } else { &trap_mod };
            let run = wasithreads::Run::start(m, &c).unwrap();
            let exit = run.wait();
            let want = if i % 2 == 0 { ExitKind::Code } else { ExitKind::Trap };
            assert_eq!(exit.kind, want, "run {i}: {exit:?}");
        }
        let (threads1, fds1) = (settle(threads0), open_fds());
        eprintln!("threads {threads0} -> {threads1}, fds {fds0} -> {fds1}");
        assert_eq!(threads1, threads0, "OS threads");
        assert_eq!(fds1, fds0, "open fds");
    });
}

/// Five hundred background runs cancelled or dropped at moments spread over their lives
/// leave no OS thread or descriptor behind.
#[test]
fn cancelled_and_dropped_background_runs_leave_nothing_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !isolated("cancelled_and_dropped_background_runs_leave_nothing_behind") {
        return;
    }
    within(LIMIT, || {
        let e = engine();
        let m = load(
            &e,
            &guest(&format!("{} (call $proc_exit (i32.const 5))", spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR]))),
        );
        let forever = load(&e, &guest(&format!("{} (loop $l (br $l))", spawn_all(&[SPIN, WAIT_FOREVER]))));
        let baseline = os_threads();
        drop(Run::start_background(&m, &RunConfig::default()).unwrap().wait());
        let (threads0, fds0) = (settle(baseline), open_fds());
        for i in 0..500 {
            let run = Run::start_background(if i % 2 == 0 { &m } else { &forever }, &RunConfig::default()).unwrap();
            spin_for(Duration::from_micros((i % 5) as u64 * 200));
            if i % 3 == 0 {
                drop(run); // cancels and joins a run still going
            } else {
                run.cancel();
                let kind = run.wait().kind;
                assert!(matches!(kind, ExitKind::Code | ExitKind::Cancelled), "{kind:?}");
            }
        }
        let threads1 = settle(threads0);
        eprintln!("threads {threads0} -> {threads1}, fds {fds0} -> {}", open_fds());
        assert_eq!(threads1, threads0, "OS threads");
        assert_eq!(open_fds(), fds0, "open fds");
    });
}

/// Eight host threads running 200 runs each on one engine at once get the right result
/// every time and leave no OS thread behind.
#[test]
fn eight_host_threads_two_hundred_runs_each_on_one_engine() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !isolated("eight_host_threads_two_hundred_runs_each_on_one_engine") {
        return;
    }
    within(LIMIT, || {
        let e = engine();
        let exiting = load(
            &e,
            &guest(&format!("{} (call $proc_exit (i32.const 9))", spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR]))),
        );
        let trapping = load(&e, &guest(&format!("{} unreachable", spawn_all(&[WAIT_FOREVER, PRINT]))));
        let baseline = os_threads();
        let hosts: Vec<_> = (0..8)
            .map(|h| {
                let (exiting, trapping) = (exiting.clone(), trapping.clone());
                std::thread::spawn(move || {
                    let mut c = RunConfig::default();
                    c.stdout = wasithreads::io::Output::Null;
                    for i in 0..200 {
                        let (m, want) =
                            if (h + i) % 2 == 0 { (&exiting, ExitKind::Code) } else { (&trapping, ExitKind::Trap) };
                        let exit = Run::start(m, &c).unwrap().wait();
                        assert_eq!(exit.kind, want, "host thread {h}, run {i}: {exit:?}");
                    }
                })
            })
            .collect();
        for h in hosts {
            h.join().unwrap();
        }
        assert_eq!(settle(baseline), baseline, "OS threads after 1600 concurrent runs");
    });
}

/// Two thousand cancels racing a guest's exit or trap give exactly one result each time
/// and leave no OS thread behind.
#[test]
fn cancel_races_with_exit_and_trap_one_result_each_time() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !isolated("cancel_races_with_exit_and_trap_one_result_each_time") {
        return;
    }
    within(LIMIT, || {
        let e = engine();
        // Exits or traps almost at once, so cancel lands before, during and after.
        let exiting =
            load(&e, &guest(&format!("(drop (call $spawn (i32.const {SPIN}))) (call $proc_exit (i32.const 3))")));
        let trapping = load(&e, &guest(&format!("(drop (call $spawn (i32.const {WAIT_FOREVER}))) unreachable")));
        let baseline = os_threads();
        let mut seen = std::collections::HashMap::new();
        for i in 0..2000u64 {
            let m = if i % 2 == 0 { &exiting } else { &trapping };
            let exits = Exits::default();
            let mut c = RunConfig::default();
            exits.install(&mut c);
            let run = Run::start_background(m, &c).unwrap();
            spin_for(Duration::from_micros((i % 20) * 60));
            run.cancel();
            let exit = run.wait();
            assert!(matches!(exit.kind, ExitKind::Code | ExitKind::Trap | ExitKind::Cancelled), "{exit:?}");
            assert_eq!(run.try_wait(), Some(exit.clone()), "exactly one result");
            drop(run);
            let got = exits.sorted();
            let mut tids: Vec<i32> = got.iter().map(|(t, _)| *t).collect();
            tids.dedup();
            assert_eq!(tids.len(), got.len(), "one exit callback per thread: {got:?}");
            *seen.entry(format!("{:?}", exit.kind)).or_insert(0) += 1;
        }
        eprintln!("cancel race outcomes: {seen:?}");
        assert_eq!(settle(baseline), baseline, "OS threads");
    });
}

/// 100 000 spawn and join cycles in one run keep resident memory flat: per-spawn
/// bookkeeping must not grow with the number of threads a long-lived run has had.
#[test]
fn spawn_and_join_cycles_keep_memory_flat() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !isolated("spawn_and_join_cycles_keep_memory_flat") {
        return;
    }
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
