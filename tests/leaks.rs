//! 1000 runs in one process: OS threads and file descriptors come back to where they were.

mod common;

use common::*;
use wasithreads::{ExitKind, RunConfig};

#[test]
fn thousand_runs_leave_no_threads_or_fds_behind() {
    let e = engine();
    // Each run: three threads (one spinning, one waiting forever, one sleeping), then a trap
    // or an exit, alternating by run.
    let exit_mod = load(&e, &guest(&format!("{} (call $proc_exit (i32.const 3))", spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR]))));
    let trap_mod = load(&e, &guest(&format!("{} unreachable", spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR]))));
    let c = RunConfig::default();
    // Warm up once so lazily created process-wide state exists before counting.
    run_watched(&exit_mod, &c);
    let (threads0, fds0) = (os_threads(), open_fds());
    for i in 0..1000 {
        let m = if i % 2 == 0 { &exit_mod } else { &trap_mod };
        let run = wasithreads::Run::start(m, &c).unwrap();
        let exit = run.wait();
        let want = if i % 2 == 0 { ExitKind::Code } else { ExitKind::Trap };
        assert_eq!(exit.kind, want, "run {i}: {exit:?}");
    }
    let (threads1, fds1) = (os_threads(), open_fds());
    eprintln!("threads {threads0} -> {threads1}, fds {fds0} -> {fds1}");
    assert_eq!(threads1, threads0, "OS threads");
    assert_eq!(fds1, fds0, "open fds");
}
