//! The guest's stdio as the host configures it: output captured per write from many
//! threads, files and null, stdin from bytes, an output callback that cancels its run, and
//! threads blocked reading the host's own stdin (those run in a child process, which
//! replaces its stdin with a pipe that never gets data).

use std::sync::Arc;
use std::time::Duration;

use crate::common::child::isolated;
use crate::common::*;
use wasithreads::io::{Input, Output};
use wasithreads::{ExitKind, Module, Run, RunConfig, RunExit};

/// Output captured from eight threads loses nothing and never interleaves: each
/// `fd_write` reaches the callback whole, 400 writes of 1000 bytes of one letter each.
#[test]
fn capture_from_eight_threads_loses_nothing_and_never_interleaves() {
    let e = engine();
    let m = load(&e, WRITERS);
    let out = Capture::default();
    let mut c = RunConfig::default();
    c.stdout = out.output();
    let (exit, _) = run_watched(&m, &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0));
    let chunks = out.0.lock().unwrap();
    assert_eq!(chunks.len(), 400, "one callback per fd_write");
    let mut per_tid = std::collections::HashMap::new();
    for (tid, data) in chunks.iter() {
        assert_eq!(data.len(), 1000);
        assert!(data.iter().all(|b| *b == data[0]), "one fd_write's bytes arrive whole");
        // The tid that wrote is the spawned thread for that letter (thread n has tid n + 1).
        assert_eq!(*tid, i32::from(data[0] - b'A') + 1);
        *per_tid.entry(*tid).or_insert(0) += 1;
    }
    assert_eq!(per_tid.len(), 8);
    assert!(per_tid.values().all(|n| *n == 50));
}

/// Stdout can go to a host file (everything arrives) and to null (the guest's writes
/// succeed and go nowhere).
#[test]
fn stdout_to_a_file_and_to_null() {
    let e = engine();
    let m = load(&e, WRITERS);
    let dir = temp_dir("stdout-file");
    let mut c = RunConfig::default();
    c.stdout = Output::File(Arc::new(std::fs::File::create(dir.join("out")).unwrap()));
    run_watched(&m, &c);
    let bytes = std::fs::read(dir.join("out")).unwrap();
    assert_eq!(bytes.len(), 400 * 1000);
    for chunk in bytes.chunks(1000) {
        assert!(chunk.iter().all(|b| *b == chunk[0]));
    }
    c.stdout = Output::Null;
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit.code, 0, "writes to null succeed");
}

/// Stdin from bytes is read from the start by every run of the config, and null stdin
/// reads as end of file.
#[test]
fn stdin_from_bytes_each_run_from_the_start() {
    let e = engine();
    let m = Module::new(&e, rust_guest()).unwrap();
    let mut c = rust_config(&["echo"]);
    let text: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    c.stdin = Input::Bytes(text.clone().into());
    for _ in 0..2 {
        let out = Capture::default();
        c.stdout = out.output();
        let (exit, _) = run_watched(&m, &c);
        assert_eq!(exit.code, 0);
        assert_eq!(out.text().as_bytes(), &text[..]);
    }
    c.stdin = Input::Null;
    let out = Capture::default();
    c.stdout = out.output();
    run_watched(&m, &c);
    assert_eq!(out.text(), "");
}

/// An output callback may cancel the run that called it (from the guest thread, in host
/// code) without deadlocking: the run ends cancelled.
#[test]
fn an_output_callback_may_cancel_its_own_run() {
    let e = engine();
    // Main prints every 10 ms forever while a thread waits forever: only the cancel from
    // the output callback (running on the printing guest thread) can end this run.
    let m = load(
        &e,
        &guest(&format!(
            "{} (loop $l (call $print (i32.const 1000) (i32.const 18)) (call $sleep (i64.const 10000000)) (br $l))",
            spawn_all(&[WAIT_FOREVER])
        )),
    );
    // A weak reference: the run owns the callback, which must not own the run.
    let slot: Arc<std::sync::OnceLock<std::sync::Weak<Run>>> = Arc::default();
    let prints = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut c = RunConfig::default();
    let (s, p) = (slot.clone(), prints.clone());
    c.stdout = Output::Callback(Arc::new(move |_tid, _bytes| {
        p.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(run) = s.get().and_then(std::sync::Weak::upgrade) {
            run.cancel();
        }
    }));
    let exit = within(Duration::from_secs(60), move || {
        let run = Arc::new(Run::start_background(&m, &c).unwrap());
        assert!(slot.set(Arc::downgrade(&run)).is_ok());
        run.wait()
    });
    assert_eq!(exit.kind, ExitKind::Cancelled);
    assert!(prints.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

fn block_stdin() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let (reader, writer) = std::io::pipe().unwrap();
        rustix::stdio::dup2_stdin(&reader).unwrap();
        Box::leak(Box::new(writer)); // keep the pipe open and empty forever
    });
}

/// `proc_exit` ends a run whose threads are blocked reading the host's stdin (a pipe
/// that never gets data): they are terminated, not waited for.
#[test]
fn proc_exit_stops_threads_reading_stdin() {
    if !isolated("proc_exit_stops_threads_reading_stdin") {
        return;
    }
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

/// A thread blocked reading stdin does not hold anything other WASI calls need: main's
/// `random_get` still returns while it waits.
#[test]
fn a_thread_blocked_on_stdin_does_not_stall_other_wasi_calls() {
    if !isolated("a_thread_blocked_on_stdin_does_not_stall_other_wasi_calls") {
        return;
    }
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

/// The timeout ends a run whose main thread is blocked reading the host's stdin.
#[test]
fn timeout_stops_a_guest_whose_main_reads_stdin() {
    if !isolated("timeout_stops_a_guest_whose_main_reads_stdin") {
        return;
    }
    block_stdin();
    let e = engine();
    let m = load(&e, &guest(&format!("(call $behave (i32.const {READ_STDIN}))")));
    let mut c = RunConfig::default();
    c.timeout = Some(std::time::Duration::from_millis(100));
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit.kind, ExitKind::Timeout);
}
