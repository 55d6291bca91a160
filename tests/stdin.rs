//! Threads blocked reading stdin. This test binary replaces its own stdin with a pipe that
//! never gets data (under CI stdin may be /dev/null, which would not block).

mod common;

use common::*;
use wasithreads::{ExitKind, RunConfig, RunExit};

fn block_stdin() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let (reader, writer) = std::io::pipe().unwrap();
        rustix::stdio::dup2_stdin(&reader).unwrap();
        std::mem::forget(writer); // keep the pipe open and empty forever
    });
}

#[test]
fn proc_exit_stops_threads_reading_stdin() {
    block_stdin();
    let e = engine();
    let m = load(
        &e,
        &guest(&format!(
            "{} (call $sleep (i64.const 20000000)) (call $proc_exit (i32.const 9))",
            spawn_all(&[READ_STDIN, READ_STDIN, WAIT_FOREVER])
        )),
    );
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit, RunExit { kind: ExitKind::Code, code: 9, tid: 0, message: None, unstopped: vec![] });
    let got = exits.sorted();
    assert_eq!(got.len(), 4);
    assert!(got[1..].iter().all(|(_, h)| h.is_terminated()), "{got:?}");
}

#[test]
fn a_thread_blocked_on_stdin_does_not_stall_other_wasi_calls() {
    block_stdin();
    let e = engine();
    // While thread 1 sits in fd_read, main makes a WASI call served by the shared context
    // (random_get) and prints; if the reader held the context, main would never get here.
    let m = load(
        &e,
        &guest(&format!(
            "{} (call $sleep (i64.const 20000000))
           (call $proc_exit (i32.add (i32.const 50) (call $random_get (i32.const 900) (i32.const 16))))",
            spawn_all(&[READ_STDIN])
        )),
    );
    let (exit, _) = run_watched(&m, &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 50), "random_get returned errno 0 and main exited");
}

#[test]
fn timeout_stops_a_guest_whose_main_reads_stdin() {
    block_stdin();
    let e = engine();
    let m = load(&e, &guest(&format!("(call $behave (i32.const {READ_STDIN}))")));
    let mut c = RunConfig::default();
    c.timeout = Some(std::time::Duration::from_millis(100));
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit.kind, ExitKind::Timeout);
}
