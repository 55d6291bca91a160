//! How long the end of a run takes for a thread blocked in each place a guest thread can
//! be: from `Run::cancel` to `Run::wait` returning (every thread stopped, joined, its exit
//! callback called), median of 21 runs per place.
//!
//!   cargo bench --bench stop          (WT_BENCH_REPS changes the 21)
//!
//! One guest thread goes to the place; main waits forever on a word nobody notifies. The
//! host cancels 20 ms after the start (the thread gets there within microseconds; 300 ms
//! for the place that first fills a million subscriptions).

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasithreads::io::{Input, Output};
use wasithreads::{Engine, EngineConfig, Module, Run, RunConfig};

const HEADER: &str = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_sync" (func $fd_sync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1300 1300 shared))
  (export "memory" (memory 0))
  (data (i32.const 2000) "fifo")
  (data (i32.const 2008) "big")
  (func $started)
  ;; A clock subscription at 400: id $clock, timeout $t, flags $flags.
  (func $clock_sub (param $at i32) (param $clock i32) (param $t i64) (param $flags i32)
    (i64.store (local.get $at) (i64.const 7))
    (i32.store8 (i32.add (local.get $at) (i32.const 8)) (i32.const 0))
    (i32.store (i32.add (local.get $at) (i32.const 16)) (local.get $clock))
    (i64.store (i32.add (local.get $at) (i32.const 24)) (local.get $t))
    (i64.store (i32.add (local.get $at) (i32.const 32)) (i64.const 0))
    (i32.store16 (i32.add (local.get $at) (i32.const 40)) (local.get $flags)))
  (func $read_fd (param $fd i32)
    (i32.store (i32.const 700) (i32.const 800))
    (i32.store (i32.const 704) (i32.const 16))
    (drop (call $fd_read (local.get $fd) (i32.const 700) (i32.const 1) (i32.const 720))))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (local $i i32)
    THREAD_BODY)
  (func (export "_start")
    (drop (call $spawn (i32.const 0)))
    (drop (memory.atomic.wait32 (i32.const 300) (i32.const 0) (i64.const -1)))))"#;

/// A 16-byte `fd_write` to stdout.
const WRITE_STDOUT: &str = "(i32.store (i32.const 700) (i32.const 800)) (i32.store (i32.const 704) (i32.const 16)) (call $started) (drop (call $fd_write (i32.const 1) (i32.const 700) (i32.const 1) (i32.const 720)))";

/// `fd_write`s of 4 KiB to stdout until one blocks (a terminal frees some room after it
/// was found full).
const WRITE_STDOUT_LOOP: &str = "(i32.store (i32.const 700) (i32.const 4096)) (i32.store (i32.const 704) (i32.const 4096)) (call $started) (loop $l (drop (call $fd_write (i32.const 1) (i32.const 700) (i32.const 1) (i32.const 720))) (br $l))";

struct Place {
    name: &'static str,
    body: String,
    setup: fn(&mut RunConfig, &std::path::Path) -> Box<dyn std::any::Any>,
    /// How long after the start to cancel: the thread gets to its place by then.
    delay_ms: u64,
}

fn no_setup(_: &mut RunConfig, _: &std::path::Path) -> Box<dyn std::any::Any> {
    Box::new(())
}

/// stdin is a pipe nobody writes to; the write end is kept open.
fn stdin_pipe(c: &mut RunConfig, _: &std::path::Path) -> Box<dyn std::any::Any> {
    let (reader, writer) = std::io::pipe().unwrap();
    c.stdin = Input::File(Arc::new(File::from(OwnedFd::from(reader))));
    Box::new(writer)
}

/// stdout is a full pipe nobody reads.
fn stdout_full_pipe(c: &mut RunConfig, _: &std::path::Path) -> Box<dyn std::any::Any> {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&writer);
    // SAFETY: F_SETFL on our own pipe's descriptor.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    while writer.write(&[0u8; 4096]).is_ok() {}
    // SAFETY: as above: back to blocking, full.
    unsafe { libc::fcntl(fd, libc::F_SETFL, 0) };
    c.stdout = Output::File(Arc::new(File::from(OwnedFd::from(writer))));
    Box::new(reader)
}

/// stdout is a terminal with no room (a pseudo-terminal whose master nobody reads).
fn stdout_full_terminal(c: &mut RunConfig, _: &std::path::Path) -> Box<dyn std::any::Any> {
    // SAFETY: opening a new pseudo-terminal master; checked below.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    assert!(master >= 0);
    // SAFETY: `master` is the master just opened; ptsname's string is copied at once.
    let name = unsafe {
        assert!(libc::grantpt(master) == 0 && libc::unlockpt(master) == 0);
        std::ffi::CStr::from_ptr(libc::ptsname(master)).to_owned()
    };
    // SAFETY: `master` is ours to own from here on.
    let master = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(master) };
    let mut slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_nonblock()
        .open(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes()))
        .unwrap();
    while slave.write(&[b'x'; 256]).is_ok() {}
    let fd = std::os::fd::AsRawFd::as_raw_fd(&slave);
    // SAFETY: F_SETFL on our own terminal description: back to blocking, full.
    unsafe { libc::fcntl(fd, libc::F_SETFL, 0) };
    c.stdout = Output::File(Arc::new(slave));
    Box::new(master)
}

/// stdout is a socket with no room (its peer reads nothing).
fn stdout_full_socket(c: &mut RunConfig, _: &std::path::Path) -> Box<dyn std::any::Any> {
    let (mut ours, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    while ours.write(&[0u8; 4096]).is_ok() {}
    ours.set_nonblocking(false).unwrap();
    c.stdout = Output::File(Arc::new(File::from(OwnedFd::from(ours))));
    Box::new(peer)
}

/// The bench's directory (on disk, not tmpfs, for `fd_sync` to have work to do),
/// preopened.
fn preopen(c: &mut RunConfig, dir: &std::path::Path) -> Box<dyn std::any::Any> {
    let _ = std::fs::remove_file(dir.join("big"));
    c.preopens.push(wasithreads::Preopen { host: dir.to_path_buf(), guest: "/".into(), read_only: false });
    Box::new(())
}

/// A directory of 30 000 empty files (made once), preopened.
fn big_dir(c: &mut RunConfig, dir: &std::path::Path) -> Box<dyn std::any::Any> {
    let big = dir.join("listing");
    if !big.exists() {
        std::fs::create_dir(&big).unwrap();
        for i in 0..30_000 {
            File::create(big.join(format!("entry-{i:06}"))).unwrap();
        }
    }
    c.preopens.push(wasithreads::Preopen { host: big, guest: "/".into(), read_only: false });
    Box::new(())
}

/// A preopened directory holding a FIFO named "fifo" with a writer kept open and silent.
fn fifo(c: &mut RunConfig, dir: &std::path::Path) -> Box<dyn std::any::Any> {
    let path = dir.join("fifo");
    let _ = std::fs::remove_file(&path);
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
    c.preopens.push(wasithreads::Preopen { host: dir.to_path_buf(), guest: "/".into(), read_only: false });
    // Opening for writing non-blocking needs a reader: open one of our own first.
    let reader = std::fs::OpenOptions::new().read(true).custom_flags_nonblock().open(&path).unwrap();
    let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    Box::new((reader, writer))
}

/// A listener on 127.0.0.1 preopened at fd 3, nobody connecting.
fn listener(c: &mut RunConfig, _: &std::path::Path) -> Box<dyn std::any::Any> {
    c.sockets.push(wasithreads::PreopenSocket::bind_tcp("127.0.0.1:0").unwrap());
    Box::new(())
}

/// A listener at fd 3 with one client connected (queued for the guest's accept) that
/// never writes nor reads.
fn silent_client(c: &mut RunConfig, _: &std::path::Path) -> Box<dyn std::any::Any> {
    let l = wasithreads::PreopenSocket::bind_tcp("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    c.sockets.push(l);
    Box::new(client)
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}
impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, libc::O_NONBLOCK)
    }
}

fn places() -> Vec<Place> {
    let hour = 3_600_000_000_000i64;
    vec![
        Place { name: "running wasm (a loop)", body: "(call $started) (loop $l (br $l))".into(), setup: no_setup, delay_ms: 20 },
        Place {
            name: "a loop of WASI calls (clock_time_get)",
            body: "(call $started) (loop $l (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 904))) (br $l))".into(),
            setup: no_setup,
            delay_ms: 20,
        },
        Place {
            name: "memory.atomic.wait32, no timeout",
            body: "(call $started) (drop (memory.atomic.wait32 (i32.const 304) (i32.const 0) (i64.const -1)))".into(),
            setup: no_setup,
            delay_ms: 20,
        },
        Place {
            name: "memory.atomic.wait64, no timeout",
            body: "(call $started) (drop (memory.atomic.wait64 (i32.const 312) (i64.const 0) (i64.const -1)))".into(),
            setup: no_setup,
            delay_ms: 20,
        },
        Place {
            name: "poll_oneoff, relative 1 h monotonic",
            body: format!("(call $clock_sub (i32.const 400) (i32.const 1) (i64.const {hour}) (i32.const 0)) (call $started) (drop (call $poll (i32.const 400) (i32.const 504) (i32.const 1) (i32.const 600)))"),
            setup: no_setup,
            delay_ms: 20,
        },
        Place {
            name: "poll_oneoff, absolute monotonic +1 h",
            body: format!("(drop (call $clock (i32.const 1) (i64.const 0) (i32.const 904))) (call $clock_sub (i32.const 400) (i32.const 1) (i64.add (i64.load (i32.const 904)) (i64.const {hour})) (i32.const 1)) (call $started) (drop (call $poll (i32.const 400) (i32.const 504) (i32.const 1) (i32.const 600)))"),
            setup: no_setup,
            delay_ms: 20,
        },
        Place {
            name: "poll_oneoff, 10 000 clocks of 1 h",
            body: format!("(loop $l (call $clock_sub (i32.add (i32.const 4096) (i32.mul (local.get $i) (i32.const 48))) (i32.const 1) (i64.const {hour}) (i32.const 0)) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 10000)))) (call $started) (drop (call $poll (i32.const 4096) (i32.const 600000) (i32.const 10000) (i32.const 600)))"),
            setup: no_setup,
            delay_ms: 20,
        },
        Place {
            name: "poll_oneoff, fd_read on an empty stdin pipe",
            body: "(i64.store (i32.const 400) (i64.const 7)) (i32.store8 (i32.const 408) (i32.const 1)) (i32.store (i32.const 416) (i32.const 0)) (call $started) (drop (call $poll (i32.const 400) (i32.const 504) (i32.const 1) (i32.const 600)))".into(),
            setup: stdin_pipe,
            delay_ms: 20,
        },
        Place { name: "fd_read, empty stdin pipe", body: "(call $started) (call $read_fd (i32.const 0))".into(), setup: stdin_pipe, delay_ms: 20 },
        Place {
            name: "fd_write, stdout a full pipe",
            body: WRITE_STDOUT.into(),
            setup: stdout_full_pipe,
            delay_ms: 20,
        },
        Place {
            name: "fd_write, stdout a full terminal",
            body: WRITE_STDOUT_LOOP.into(),
            setup: stdout_full_terminal,
            delay_ms: 20,
        },
        Place {
            name: "fd_write, stdout a full socket",
            body: WRITE_STDOUT_LOOP.into(),
            setup: stdout_full_socket,
            delay_ms: 20,
        },
        Place {
            name: "fd_read, FIFO opened in a preopen, writer silent",
            body: "(drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 2000) (i32.const 4) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 1000))) (call $started) (call $read_fd (i32.load (i32.const 1000)))".into(),
            setup: fifo,
            delay_ms: 20,
        },
        Place {
            name: "sock_accept, listener with no client",
            body: "(call $started) (drop (call $accept (i32.const 3) (i32.const 0) (i32.const 1000)))".into(),
            setup: listener,
            delay_ms: 20,
        },
        Place {
            name: "poll_oneoff, fd_read on a listener with no client",
            body: "(i64.store (i32.const 400) (i64.const 7)) (i32.store8 (i32.const 408) (i32.const 1)) (i32.store (i32.const 416) (i32.const 3)) (call $started) (drop (call $poll (i32.const 400) (i32.const 504) (i32.const 1) (i32.const 600)))".into(),
            setup: listener,
            delay_ms: 20,
        },
        Place {
            name: "sock_recv, accepted connection, peer silent",
            body: "(drop (call $accept (i32.const 3) (i32.const 0) (i32.const 1000))) (i32.store (i32.const 700) (i32.const 800)) (i32.store (i32.const 704) (i32.const 16)) (call $started) (drop (call $recv (i32.load (i32.const 1000)) (i32.const 700) (i32.const 1) (i32.const 0) (i32.const 720) (i32.const 724)))".into(),
            setup: silent_client,
            delay_ms: 20,
        },
        Place {
            name: "fd_read, accepted connection, peer silent",
            body: "(drop (call $accept (i32.const 3) (i32.const 0) (i32.const 1000))) (call $started) (call $read_fd (i32.load (i32.const 1000)))".into(),
            setup: silent_client,
            delay_ms: 20,
        },
        Place {
            name: "sock_send, accepted connection, peer never reads",
            body: "(drop (call $accept (i32.const 3) (i32.const 0) (i32.const 1000))) (i32.store (i32.const 700) (i32.const 65536)) (i32.store (i32.const 704) (i32.const 65536)) (call $started) (loop $l (drop (call $send (i32.load (i32.const 1000)) (i32.const 700) (i32.const 1) (i32.const 0) (i32.const 720))) (br $l))".into(),
            setup: silent_client,
            delay_ms: 20,
        },
        Place {
            name: "fd_sync: a loop of 16 MiB of writes then fd_sync, on disk",
            // "big" created and truncated (oflags 9), rights fd_write; 8 writes of 2 MiB.
            body: "(drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 2008) (i32.const 3) (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 1000))) (i32.store (i32.const 700) (i32.const 65536)) (i32.store (i32.const 704) (i32.const 2097152)) (call $started) (loop $l (local.set $i (i32.const 0)) (loop $w (drop (call $fd_write (i32.load (i32.const 1000)) (i32.const 700) (i32.const 1) (i32.const 720))) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $w (i32.lt_u (local.get $i) (i32.const 8)))) (drop (call $fd_sync (i32.load (i32.const 1000)))) (br $l))".into(),
            setup: preopen,
            delay_ms: 20,
        },
        Place {
            name: "fd_readdir of 30 000 entries into a 4 MiB buffer, over and over",
            body: "(call $started) (loop $l (drop (call $fd_readdir (i32.const 3) (i32.const 65536) (i32.const 4194304) (i64.const 0) (i32.const 720))) (br $l))".into(),
            setup: big_dir,
            delay_ms: 20,
        },
        Place {
            name: "fd_readdir skipping to cookie 30 000, over and over",
            body: "(call $started) (loop $l (drop (call $fd_readdir (i32.const 3) (i32.const 65536) (i32.const 24) (i64.const 0) (i32.const 720))) (drop (call $fd_readdir (i32.const 3) (i32.const 65536) (i32.const 24) (i64.const 30000) (i32.const 720))) (br $l))".into(),
            setup: big_dir,
            delay_ms: 20,
        },
        Place {
            name: "poll_oneoff, 2^20 fd_read subscriptions on a regular file, over and over",
            // "big" created (oflags 1), rights fd_read; 2^20 subscriptions at 1 MiB, events after.
            body: "(drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 2008) (i32.const 3) (i32.const 1) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 1000))) (local.set $i (i32.const 0)) (loop $f (i64.store (i32.add (i32.const 1048576) (i32.mul (local.get $i) (i32.const 48))) (i64.const 0)) (i32.store8 (i32.add (i32.const 1048584) (i32.mul (local.get $i) (i32.const 48))) (i32.const 1)) (i32.store (i32.add (i32.const 1048592) (i32.mul (local.get $i) (i32.const 48))) (i32.load (i32.const 1000))) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $f (i32.lt_u (local.get $i) (i32.const 1048576)))) (call $started) (loop $l (drop (call $poll (i32.const 1048576) (i32.const 51380224) (i32.const 1048576) (i32.const 720))) (br $l))".into(),
            setup: preopen,
            delay_ms: 300,
        },
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let reps: usize = std::env::var("WT_BENCH_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(21).max(1);
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("wasithreads-stop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("| where the thread is when the run ends | median stop time ({reps} runs) | worst |");
    println!("|---|---|---|");
    for place in places() {
        let module = Module::new(&engine, HEADER.replace("THREAD_BODY", &place.body).as_bytes()).unwrap();
        let mut samples = Vec::new();
        for _ in 0..reps {
            let mut config = RunConfig::default();
            let keep = (place.setup)(&mut config, &dir);
            // The thread must still be where it was sent when the run ends.
            let how = Arc::new(std::sync::Mutex::new(None));
            let h = how.clone();
            config.hooks.on_thread_exit = Some(Arc::new(move |tid, exit| {
                if tid == 1 {
                    *h.lock().unwrap() = Some(exit.clone());
                }
            }));
            let run = Run::start_background(&module, &config).unwrap();
            // Give the thread time to get there.
            std::thread::sleep(Duration::from_millis(place.delay_ms));
            let t = Instant::now();
            run.cancel();
            let exit = run.wait();
            samples.push(t.elapsed().as_secs_f64());
            assert_eq!(exit.kind, wasithreads::ExitKind::Cancelled, "{}: {exit:?}", place.name);
            assert!(exit.unstopped.is_empty(), "{}: {exit:?}", place.name);
            let thread = how.lock().unwrap().clone();
            assert!(
                thread.as_ref().is_some_and(wasithreads::ThreadExit::is_terminated),
                "{}: the thread was not blocked there",
                place.name
            );
            drop(keep);
        }
        let worst = samples.iter().cloned().fold(0.0, f64::max);
        println!("| {} | {:.3} ms | {:.3} ms |", place.name, median(samples) * 1e3, worst * 1e3);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
