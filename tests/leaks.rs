//! 1000 runs in one process: OS threads and file descriptors come back to where they were.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::*;
use wasithreads::{ExitKind, Run, RunConfig};

/// Tests here count the process's threads and fds, so they must not overlap.
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

#[test]
fn thousand_runs_leave_no_threads_or_fds_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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

#[test]
fn cancelled_and_dropped_background_runs_leave_nothing_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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

#[test]
fn eight_host_threads_two_hundred_runs_each_on_one_engine() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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

#[test]
fn cancel_races_with_exit_and_trap_one_result_each_time() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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
