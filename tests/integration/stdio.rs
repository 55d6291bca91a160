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

/// True when this process has descriptor `fd` open.
fn fd_is_open(fd: i32) -> bool {
    // SAFETY: `fcntl(F_GETFD)` only reads the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// The guest of `closed_host_stdio_is_closed_for_the_guest`: writes "out\n" to fd 1 and
/// 2, creates a file and lists the preopen (fd 3), opens the FIFO `p` there and polls it
/// for 1 ms (a wait through the run's eventfd), spawns a thread that waits forever, reads
/// stdin to its end, then runs `tail`. Exit code: stdout errno | stderr errno << 8 |
/// (open, readdir, FIFO, poll errnos or'ed) << 16 | stdin (bytes read, or 64 + the errno
/// that ended it) << 24.
fn closed_stdio_guest(tail: &str) -> String {
    wasi_guest(
        1,
        r#"(data (i32.const 0x100) "out\n") (data (i32.const 0x120) "f") (data (i32.const 0x124) "p")"#,
        &format!(
            r#"(func (export "wasi_thread_start") (param i32 i32)
    (drop (memory.atomic.wait32 (i32.const 0x300) (i32.const 0) (i64.const -1))))
  (func $read_to_end (param $fd i32) (result i32)
    (local $r i32) (local $total i32)
    (i32.store (i32.const 0x230) (i32.const 0x2000))
    (i32.store (i32.const 0x234) (i32.const 256))
    (block $end (loop $more
      (local.set $r (call $fd_read (local.get $fd) (i32.const 0x230) (i32.const 1) (i32.const 0x238)))
      (br_if $end (local.get $r))
      (br_if $end (i32.eqz (i32.load (i32.const 0x238))))
      (local.set $total (i32.add (local.get $total) (i32.load (i32.const 0x238))))
      (br $more)))
    (if (result i32) (local.get $r) (then (i32.add (i32.const 64) (local.get $r))) (else (local.get $total))))
  (func (export "_start")
    (local $out i32) (local $err i32) (local $files i32) (local $stdin i32)
    (i32.store (i32.const 0x200) (i32.const 0x100))
    (i32.store (i32.const 0x204) (i32.const 4))
    (local.set $out (call $fd_write (i32.const 1) (i32.const 0x200) (i32.const 1) (i32.const 0x210)))
    (local.set $err (call $fd_write (i32.const 2) (i32.const 0x200) (i32.const 1) (i32.const 0x210)))
    (local.set $files (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x120) (i32.const 1)
      (i32.const 1) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 0x220)))
    (local.set $files (i32.or (local.get $files)
      (call $fd_readdir (i32.const 3) (i32.const 0x1000) (i32.const 64) (i64.const 0) (i32.const 0x224))))
    (local.set $files (i32.or (local.get $files) (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x124)
      (i32.const 1) (i32.const 0) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 0x228))))
    ;; poll_oneoff: the FIFO readable (never: no writer ever came), or 1 ms passed.
    (i64.store (i32.const 0x500) (i64.const 1))
    (i32.store8 (i32.const 0x508) (i32.const 1))
    (i32.store (i32.const 0x510) (i32.load (i32.const 0x228)))
    (i64.store (i32.const 0x530) (i64.const 2))
    (i32.store8 (i32.const 0x538) (i32.const 0))
    (i32.store (i32.const 0x540) (i32.const 1))
    (i64.store (i32.const 0x548) (i64.const 1000000))
    (i64.store (i32.const 0x550) (i64.const 0))
    (i32.store16 (i32.const 0x558) (i32.const 0))
    (local.set $files (i32.or (local.get $files)
      (call $poll (i32.const 0x500) (i32.const 0x600) (i32.const 2) (i32.const 0x640))))
    (drop (call $spawn (i32.const 0)))
    (local.set $stdin (call $read_to_end (i32.const 0)))
    {tail}
    (call $proc_exit (i32.or (i32.or (local.get $out) (i32.shl (local.get $err) (i32.const 8)))
      (i32.or (i32.shl (local.get $files) (i32.const 16)) (i32.shl (local.get $stdin) (i32.const 24))))))"#
        ),
    )
}

/// A pipe whose read end replaces this process's fd 0 (when `fd 0` is not to be closed),
/// holding "hello"; its write end is returned (drop it for end of file).
fn stdin_pipe() -> std::os::fd::OwnedFd {
    let (r, w) = rustix::pipe::pipe().unwrap();
    rustix::io::write(&w, b"hello").unwrap();
    // SAFETY: fd 0 is this child process's own; dup2 replaces it.
    assert_eq!(unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&r), 0) }, 0);
    w
}

/// A host whose fd 0, 1 or 2 is closed (each, and all three) runs guests with default
/// stdio: the guest's fd of a closed host descriptor fails with `badf` (reads and writes),
/// the others work; nothing crosses over (stdout writes never reach stdin); none of the
/// library's descriptors lands on 0, 1 or 2 while the run goes on (preopens, opened files,
/// directory streams, reopened pipes, the wake eventfd); a run ends at the guest's
/// `proc_exit`, and a run blocked in a read, a sleep and an atomic wait goes on until
/// cancelled, ending cancelled; the host's closed descriptors are still closed afterwards.
#[test]
fn closed_host_stdio_is_closed_for_the_guest() {
    if !isolated("closed_host_stdio_is_closed_for_the_guest") {
        return;
    }
    const BADF: i32 = crate::common::wasi::BADF;
    let e = engine();
    let ends = load(&e, &closed_stdio_guest(""));
    let blocks = load(&e, &closed_stdio_guest("(call $sleep (i64.const 3600000000000))"));
    // The originals, kept above stdio to put back after each case.
    // SAFETY: duplicating this process's own descriptors.
    let keep: Vec<i32> = (0..3).map(|fd| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) }).collect();
    assert!(keep.iter().all(|fd| *fd >= 100));
    for closed in [&[0][..], &[1], &[2], &[0, 1, 2]] {
        let dir = temp_dir(&format!("closed-stdio-{closed:?}"));
        mkfifo(&dir.join("p"));
        for (module, cancel) in [(&ends, false), (&blocks, true)] {
            let writer = stdin_pipe();
            let writer = if cancel {
                Some(writer)
            } else {
                drop(writer);
                None
            };
            for fd in closed {
                // SAFETY: closing this child process's own stdio, put back below.
                unsafe { libc::close(*fd) };
            }
            let mut c = RunConfig::default();
            c.preopens.push(sandbox_preopen(&dir));
            let exits = Exits::default();
            exits.install(&mut c);
            // When thread 1 starts, every descriptor the run opened is open: the closed
            // numbers must still be free.
            let (tx, rx) = std::sync::mpsc::channel();
            let tx = std::sync::Mutex::new(tx);
            let closed_now: Vec<i32> = closed.to_vec();
            c.hooks.on_thread_start = Some(Arc::new(move |tid| {
                if tid == 1 {
                    let taken: Vec<i32> = closed_now.iter().copied().filter(|fd| fd_is_open(*fd)).collect();
                    let _ = tx.lock().unwrap().send(taken);
                }
            }));
            let module = module.clone();
            let (exit, taken, early) = within(Duration::from_secs(60), move || {
                let run = Run::start(&module, &c).expect("run starts");
                let taken = rx.recv_timeout(Duration::from_secs(30)).expect("thread 1 starts");
                let mut early = None;
                if cancel {
                    // Give a wrongly woken thread time to show; the run must still go on.
                    std::thread::sleep(Duration::from_millis(100));
                    early = Some((run.try_wait().is_some(), exits.sorted().len()));
                    run.cancel();
                }
                (run.wait(), taken, early)
            });
            drop(writer);
            let still_closed: Vec<bool> = closed.iter().map(|fd| !fd_is_open(*fd)).collect();
            for fd in 0..3 {
                // SAFETY: putting this child process's own stdio back.
                unsafe { libc::dup2(keep[fd as usize], fd) };
            }
            let what = format!("host fds {closed:?} closed, {}", if cancel { "cancelled" } else { "to the end" });
            assert!(taken.is_empty(), "{what}: the run opened descriptors at {taken:?}");
            assert!(still_closed.iter().all(|c| *c), "{what}: closed fds reopened after the run");
            if cancel {
                assert_eq!(early, Some((false, 0)), "{what}: the run or a thread ended before the cancel");
                assert_eq!(exit.kind, ExitKind::Cancelled, "{what}: {exit:?}");
                continue;
            }
            assert_eq!(exit.kind, ExitKind::Code, "{what}: {exit:?}");
            let expect = |fd: i32, ok: i32| if closed.contains(&fd) { BADF } else { ok };
            let code = exit.code;
            assert_eq!(code & 0xff, expect(1, 0), "{what}: stdout write");
            assert_eq!((code >> 8) & 0xff, expect(2, 0), "{what}: stderr write");
            assert_eq!((code >> 16) & 0xff, 0, "{what}: path_open, fd_readdir");
            let stdin = if closed.contains(&0) { 64 + BADF } else { 5 };
            assert_eq!(code >> 24, stdin, "{what}: stdin (bytes read, or 64 + the errno)");
        }
    }
}
