//! `poll_oneoff` in every form and the socket calls, with WAT guests: events and errnos
//! exactly, and that long waits end as soon as the run does.
//!
//! Each guest checks what it got itself and exits with the number of the first check that
//! failed (`proc_exit(0)` when all passed), so the host only looks at the exit code.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use wasithreads::io::Input;
use wasithreads::{ExitKind, Preopen, Run, RunConfig, RunExit};
use wasmtime_wasi::p1::types::Errno;

const HOUR: u64 = 3_600_000_000_000;

/// Generous bound for a blocked call to end after its run did (the library promises
/// milliseconds; a loaded CI machine may take far longer than that, but not an hour).
const LIVENESS: Duration = Duration::from_secs(10);

fn errno(e: Errno) -> i32 {
    e as i32
}

/// A guest with `main` as the body of `_start` and `thread` as that of every spawned
/// thread (locals `$i`, `$r`, `$t` in both).
///
/// Memory: 0x40 "thread is about to poll" flag, 0x80 clock_time_get result, 0x100
/// nevents, 0x200.. up to 16 small subscriptions (48 bytes each), 0x600.. their events
/// (32 bytes each), 0x900 iovecs, 0xa00 and 0xb00 buffers, 0xc00/0xc04 results,
/// 0x10000.. a big subscription array, 0x90000.. its events.
fn guest_with(main: &str, thread: &str) -> String {
    format!(
        r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $sock_shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 16 16 shared))
  (export "memory" (memory 0))

  ;; A clock subscription at $p.
  (func $sub_clock (param $p i32) (param $ud i64) (param $id i32) (param $timeout i64) (param $flags i32)
    (i64.store (local.get $p) (local.get $ud))
    (i32.store8 offset=8 (local.get $p) (i32.const 0))
    (i32.store offset=16 (local.get $p) (local.get $id))
    (i64.store offset=24 (local.get $p) (local.get $timeout))
    (i64.store offset=32 (local.get $p) (i64.const 0))
    (i32.store16 offset=40 (local.get $p) (local.get $flags)))

  ;; An fd_read (tag 1) or fd_write (tag 2) subscription at $p.
  (func $sub_fd (param $p i32) (param $ud i64) (param $tag i32) (param $fd i32)
    (i64.store (local.get $p) (local.get $ud))
    (i32.store8 offset=8 (local.get $p) (local.get $tag))
    (i32.store offset=16 (local.get $p) (local.get $fd)))

  (func $check (param $got i32) (param $want i32) (param $step i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then (call $proc_exit (local.get $step)))))
  (func $check64 (param $got i64) (param $want i64) (param $step i32)
    (if (i64.ne (local.get $got) (local.get $want)) (then (call $proc_exit (local.get $step)))))

  ;; Checks event $k at 0x600: userdata, error, type.
  (func $check_event (param $k i32) (param $ud i64) (param $error i32) (param $type i32) (param $step i32)
    (local $e i32)
    (local.set $e (i32.add (i32.const 0x600) (i32.mul (local.get $k) (i32.const 32))))
    (call $check64 (i64.load (local.get $e)) (local.get $ud) (local.get $step))
    (call $check (i32.load16_u offset=8 (local.get $e)) (local.get $error) (i32.add (local.get $step) (i32.const 1)))
    (call $check (i32.load8_u offset=10 (local.get $e)) (local.get $type) (i32.add (local.get $step) (i32.const 2))))

  ;; The clock $id now.
  (func $now (param $id i32) (result i64)
    (call $check (call $clock (local.get $id) (i64.const 1) (i32.const 0x80)) (i32.const 0) (i32.const 99))
    (i64.load (i32.const 0x80)))

  ;; $n subscriptions to 1-hour relative monotonic clocks at 0x10000, userdata = index.
  (func $fill_hours (param $n i32)
    (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (call $sub_clock (i32.add (i32.const 0x10000) (i32.mul (local.get $i) (i32.const 48)))
        (i64.extend_i32_u (local.get $i)) (i32.const 1) (i64.const {HOUR}) (i32.const 0))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))

  ;; Tells main this thread is about to block.
  (func $about_to_block
    (i32.atomic.store (i32.const 0x40) (i32.const 1))
    (drop (memory.atomic.notify (i32.const 0x40) (i32.const -1))))

  (func $wait_blocked
    (block $done (loop $again
      (br_if $done (i32.atomic.load (i32.const 0x40)))
      (drop (memory.atomic.wait32 (i32.const 0x40) (i32.const 0) (i64.const 1000000)))
      (br $again))))

  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (local $i i32) (local $r i32) (local $t i64)
    {thread})

  (func (export "_start")
    (local $i i32) (local $r i32) (local $t i64)
    {main}))"#
    )
}

fn guest(main: &str) -> String {
    guest_with(main, "")
}

fn start(wat: &str, config: &RunConfig) -> Run {
    let e = engine();
    Run::start_background(&load(&e, wat), config).expect("run starts")
}

fn run_code(wat: &str, config: &RunConfig) -> i32 {
    let e = engine();
    let (exit, _) = run_watched(&load(&e, wat), config);
    assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
    exit.code
}

/// Cancels `run` (after checking it is still blocked) and checks every thread stopped
/// within the liveness bound.
fn cancel_and_check(row: &str, run: Run, exits: &Exits, threads: usize) {
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(run.try_wait(), None, "{row}: the guest is blocked");
    let t = Instant::now();
    run.cancel();
    let exit = within(LIVENESS, move || run.wait());
    assert!(t.elapsed() < LIVENESS, "{row}");
    assert_eq!(
        exit,
        RunExit { kind: ExitKind::Cancelled, code: 0, tid: -1, message: None, unstopped: vec![] },
        "{row}"
    );
    let got = exits.sorted();
    assert_eq!(got.len(), threads, "{row}: {got:?}");
    assert!(got.iter().all(|(_, h)| h.is_terminated()), "{row}: {got:?}");
}

/// Clock subscriptions answer as preview 1 says. Each row's guest checks its events
/// itself and exits with the number of the first check that failed (0 when all passed):
/// relative clocks fire with their userdata and only the due one among several fire;
/// absolute deadlines in the past (realtime and monotonic) fire at once and one 20 ms
/// ahead is waited for; CPU-time clocks and an empty subscription list are `inval`.
#[test]
fn clock_subscriptions_fire_as_preview_1_says() {
    let inval = errno(Errno::Inval);
    let rows: &[(&str, String)] = &[
        (
            "a relative sleep returns a clock event with its userdata",
            guest("(call $sub_clock (i32.const 0x200) (i64.const 0x1122334455667788) (i32.const 1) (i64.const 1000000) (i32.const 0))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 1) (i32.const 0x100)) (i32.const 0) (i32.const 1))
         (call $check (i32.load (i32.const 0x100)) (i32.const 1) (i32.const 2))
         (call $check_event (i32.const 0) (i64.const 0x1122334455667788) (i32.const 0) (i32.const 0) (i32.const 3))
         ;; a relative realtime clock too, together with a far one: only it fires
         (call $sub_clock (i32.const 0x200) (i64.const 5) (i32.const 1) (i64.const 3600000000000) (i32.const 0))
         (call $sub_clock (i32.const 0x230) (i64.const 6) (i32.const 0) (i64.const 2000000) (i32.const 0))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 2) (i32.const 0x100)) (i32.const 0) (i32.const 10))
         (call $check (i32.load (i32.const 0x100)) (i32.const 1) (i32.const 11))
         (call $check_event (i32.const 0) (i64.const 6) (i32.const 0) (i32.const 0) (i32.const 12))
         (call $proc_exit (i32.const 0))"),
        ),
        (
            "absolute deadlines in the past return at once",
            guest(&format!(
        ";; realtime, a second ago, with a 1-hour clock beside it: only the past one fires
         (call $sub_clock (i32.const 0x200) (i64.const 1) (i32.const 1) (i64.const {HOUR}) (i32.const 0))
         (call $sub_clock (i32.const 0x230) (i64.const 2) (i32.const 0)
            (i64.sub (call $now (i32.const 0)) (i64.const 1000000000)) (i32.const 1))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 2) (i32.const 0x100)) (i32.const 0) (i32.const 1))
         (call $check (i32.load (i32.const 0x100)) (i32.const 1) (i32.const 2))
         (call $check_event (i32.const 0) (i64.const 2) (i32.const 0) (i32.const 0) (i32.const 3))
         ;; realtime at the epoch, monotonic at 0 (the run's start)
         (call $sub_clock (i32.const 0x200) (i64.const 3) (i32.const 0) (i64.const 0) (i32.const 1))
         (call $sub_clock (i32.const 0x230) (i64.const 4) (i32.const 1) (i64.const 0) (i32.const 1))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 2) (i32.const 0x100)) (i32.const 0) (i32.const 10))
         (call $check (i32.load (i32.const 0x100)) (i32.const 2) (i32.const 11))
         (call $check_event (i32.const 0) (i64.const 3) (i32.const 0) (i32.const 0) (i32.const 12))
         (call $check_event (i32.const 1) (i64.const 4) (i32.const 0) (i32.const 0) (i32.const 15))
         ;; a realtime deadline 20 ms ahead is waited for
         (local.set $t (call $now (i32.const 1)))
         (call $sub_clock (i32.const 0x200) (i64.const 5) (i32.const 0)
            (i64.add (call $now (i32.const 0)) (i64.const 20000000)) (i32.const 1))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 1) (i32.const 0x100)) (i32.const 0) (i32.const 20))
         (call $check_event (i32.const 0) (i64.const 5) (i32.const 0) (i32.const 0) (i32.const 21))
         (call $check (i64.ge_u (i64.sub (call $now (i32.const 1)) (local.get $t)) (i64.const 15000000)) (i32.const 1) (i32.const 24))
         (call $proc_exit (i32.const 0))"
    )),
        ),
        (
            "cpu-time clocks and zero subscriptions are inval",
            guest(&format!(
        "(call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 0) (i32.const 0x100)) (i32.const {inval}) (i32.const 1))
         (call $sub_clock (i32.const 0x200) (i64.const 1) (i32.const 2) (i64.const 1000) (i32.const 0))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 1) (i32.const 0x100)) (i32.const {inval}) (i32.const 2))
         (call $sub_clock (i32.const 0x200) (i64.const 1) (i32.const 3) (i64.const 1000) (i32.const 1))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 1) (i32.const 0x100)) (i32.const {inval}) (i32.const 3))
         (call $proc_exit (i32.const 0))"
    )),
        ),
    ];
    for (row, wat) in rows {
        assert_eq!(run_code(wat, &RunConfig::default()), 0, "{row}: the number of the failed check");
    }
}

/// A poll that would block for an hour (or forever) ends as soon as the run is
/// cancelled, every thread reported terminated: each row is a guest blocked in
/// `poll_oneoff` or `sock_recv` and what its stdin is.
#[test]
fn blocked_polls_are_stopped_by_cancel() {
    let rows: &[(&str, String, StdinSetup)] = &[
        (
            "an absolute monotonic deadline an hour ahead (wasi-libc clock_nanosleep with TIMER_ABSTIME)",
            guest(&format!(
        "(call $sub_clock (i32.const 0x200) (i64.const 1) (i32.const 1)
            (i64.add (call $now (i32.const 1)) (i64.const {HOUR})) (i32.const 1))
         (drop (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 1) (i32.const 0x100)))
         (call $proc_exit (i32.const 3))"
    )),
            none,
        ),
        (
            "ten thousand one-hour clocks",
            guest("(call $fill_hours (i32.const 10000))
         (drop (call $poll (i32.const 0x10000) (i32.const 0x90000) (i32.const 10000) (i32.const 0x140)))
         (call $proc_exit (i32.const 3))"),
            none,
        ),
        (
            "fd_read on an empty stdin pipe",
            guest("(call $sub_fd (i32.const 0x200) (i64.const 7) (i32.const 1) (i32.const 0))
         (drop (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 1) (i32.const 0x100)))
         (call $proc_exit (i32.const 3))"),
            empty_stdin_pipe,
        ),
        (
            "sock_recv on a silent stdin socket",
            guest("(i32.store (i32.const 0x900) (i32.const 0xa00)) (i32.store (i32.const 0x904) (i32.const 16))
         (drop (call $sock_recv (i32.const 0) (i32.const 0x900) (i32.const 1) (i32.const 0) (i32.const 0xc00) (i32.const 0xc04)))
         (call $proc_exit (i32.const 3))"),
            silent_stdin_socket,
        ),
    ];
    for (row, wat, setup) in rows {
        let mut c = RunConfig::default();
        let _keep = setup(&mut c);
        let exits = Exits::default();
        exits.install(&mut c);
        cancel_and_check(row, start(wat, &c), &exits, 1);
    }
}

/// Sets up a row's stdin; returns what must stay alive (the other end) while it runs.
type StdinSetup = fn(&mut RunConfig) -> Option<Box<dyn std::any::Any>>;

fn none(_: &mut RunConfig) -> Option<Box<dyn std::any::Any>> {
    None
}

/// Stdin is a pipe nobody writes to.
fn empty_stdin_pipe(c: &mut RunConfig) -> Option<Box<dyn std::any::Any>> {
    let (reader, writer) = std::io::pipe().unwrap();
    c.stdin = Input::File(Arc::new(std::fs::File::from(OwnedFd::from(reader))));
    Some(Box::new(writer))
}

/// Stdin is a socket nobody writes to.
fn silent_stdin_socket(c: &mut RunConfig) -> Option<Box<dyn std::any::Any>> {
    let (config, host) = socket_stdin();
    c.stdin = config.stdin;
    Some(Box::new(host))
}

/// A thread polling an absolute monotonic deadline an hour ahead does not hold up the
/// run: `proc_exit` from another thread ends it at once, and so does the timeout when main
/// itself waits.
#[test]
fn absolute_monotonic_deadline_in_a_thread_ends_with_proc_exit_and_timeout() {
    let poll_hour = format!(
        "(call $sub_clock (i32.const 0x300) (i64.const 1) (i32.const 1)
            (i64.add (call $now (i32.const 1)) (i64.const {HOUR})) (i32.const 1))
         (call $about_to_block)
         (drop (call $poll (i32.const 0x300) (i32.const 0x700) (i32.const 1) (i32.const 0x140)))"
    );
    // proc_exit in another thread.
    let wat = guest_with(
        "(drop (call $spawn (i32.const 0))) (call $wait_blocked) (call $proc_exit (i32.const 7))",
        &poll_hour,
    );
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, took) = run_watched(&load(&engine(), &wat), &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 7));
    assert!(took < LIVENESS);
    assert!(exits.sorted()[1].1.is_terminated());
    // The run's timeout, with main itself in the wait.
    let mut c = RunConfig::default();
    c.timeout = Some(Duration::from_millis(100));
    let (exit, took) = run_watched(&load(&engine(), &guest(&poll_hour)), &c);
    assert_eq!(exit.kind, ExitKind::Timeout);
    assert!(took < LIVENESS);
}

/// A thread polling 10 000 one-hour clocks stalls no other thread (main makes 100 000
/// clock and random calls meanwhile) and is terminated when main exits.
#[test]
fn ten_thousand_hour_clocks_stall_no_other_thread_and_stop_at_exit() {
    // Thread 1 sits in poll_oneoff on 10 000 one-hour clocks while main makes 100 000
    // clock_time_get + random_get calls, then exits.
    let thread = "(call $fill_hours (i32.const 10000))
        (call $about_to_block)
        (drop (call $poll (i32.const 0x10000) (i32.const 0x90000) (i32.const 10000) (i32.const 0x140)))";
    let main = "(drop (call $spawn (i32.const 0)))
        (call $wait_blocked)
        (block $done (loop $next
          (br_if $done (i32.ge_u (local.get $i) (i32.const 100000)))
          (call $check (call $clock (i32.const 1) (i64.const 1) (i32.const 0x80)) (i32.const 0) (i32.const 1))
          (call $check (call $random (i32.const 0xa00) (i32.const 16)) (i32.const 0) (i32.const 2))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
        (call $proc_exit (i32.const 42))";
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, _) = run_watched(&load(&engine(), &guest_with(main, thread)), &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 42));
    let got = exits.sorted();
    assert!(got[1].1.is_terminated(), "{got:?}");
}

/// Huge subscription counts fail at once (`nomem`, before anything is read), and a count
/// under the cap whose array runs past memory traps, as for any out-of-bounds pointer.
#[test]
fn huge_subscription_counts_fail_quickly() {
    let nomem = errno(Errno::Nomem);
    let wat = guest(&format!(
        ";; 100 million and 2^32-1: refused before anything is read
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 100000000) (i32.const 0x100)) (i32.const {nomem}) (i32.const 1))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const -1) (i32.const 0x100)) (i32.const {nomem}) (i32.const 2))
         (call $proc_exit (i32.const 0))"
    ));
    assert_eq!(run_code(&wat, &RunConfig::default()), 0);
    // A million (under the cap) of which only the first 20 000 are in memory: the read
    // past the end traps, as WASI says of out-of-bounds pointers (and Wasmtime does).
    let wat = guest(
        "(call $fill_hours (i32.const 20000))
         (drop (call $poll (i32.const 0x10000) (i32.const 0x90000) (i32.const 1000000) (i32.const 0x100)))
         (call $proc_exit (i32.const 3))",
    );
    let (exit, took) = run_watched(&load(&engine(), &wat), &RunConfig::default());
    assert_eq!(exit.kind, ExitKind::Trap, "{exit:?}");
    assert!(exit.message.as_deref().unwrap_or("").contains("out of bounds"), "{exit:?}");
    assert!(took < LIVENESS);
}

/// An `fd_read` subscription on a stdin pipe waits until the host writes, then fires.
#[test]
fn fd_read_on_stdin_fires_when_the_host_writes_to_the_pipe() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let wat = guest(&format!(
        "(call $sub_clock (i32.const 0x200) (i64.const 8) (i32.const 1) (i64.const {HOUR}) (i32.const 0))
         (call $sub_fd (i32.const 0x230) (i64.const 7) (i32.const 1) (i32.const 0))
         (call $sub_fd (i32.const 0x260) (i64.const 9) (i32.const 1) (i32.const 0))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 3) (i32.const 0x100)) (i32.const 0) (i32.const 1))
         (call $check (i32.load (i32.const 0x100)) (i32.const 2) (i32.const 2))
         (call $check_event (i32.const 0) (i64.const 7) (i32.const 0) (i32.const 1) (i32.const 3))
         (call $check_event (i32.const 1) (i64.const 9) (i32.const 0) (i32.const 1) (i32.const 6))
         ;; nbytes: the 3 bytes in the pipe
         (call $check64 (i64.load (i32.const 0x610)) (i64.const 3) (i32.const 9))
         (call $proc_exit (i32.const 0))"
    ));
    let mut c = RunConfig::default();
    c.stdin = Input::File(Arc::new(std::fs::File::from(OwnedFd::from(reader))));
    let run = start(&wat, &c);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(run.try_wait(), None, "the guest waits for the pipe");
    writer.write_all(b"abc").unwrap();
    let exit = within(LIVENESS, move || run.wait());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
}

/// Stdin from bytes (with the number of bytes left), null stdin (readable, at its end)
/// and the output streams are ready at once: they never block.
#[test]
fn stdin_bytes_null_and_outputs_are_ready_at_once() {
    let wat = guest(&format!(
        "(call $sub_clock (i32.const 0x200) (i64.const 1) (i32.const 1) (i64.const {HOUR}) (i32.const 0))
         (call $sub_fd (i32.const 0x230) (i64.const 2) (i32.const 1) (i32.const 0))
         (call $sub_fd (i32.const 0x260) (i64.const 3) (i32.const 2) (i32.const 1))
         (call $sub_fd (i32.const 0x290) (i64.const 4) (i32.const 2) (i32.const 2))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 4) (i32.const 0x100)) (i32.const 0) (i32.const 1))
         (call $check (i32.load (i32.const 0x100)) (i32.const 3) (i32.const 2))
         (call $check_event (i32.const 0) (i64.const 2) (i32.const 0) (i32.const 1) (i32.const 3))
         (call $check_event (i32.const 1) (i64.const 3) (i32.const 0) (i32.const 2) (i32.const 6))
         (call $check_event (i32.const 2) (i64.const 4) (i32.const 0) (i32.const 2) (i32.const 9))
         ;; nbytes of stdin: the 5 bytes left
         (call $check64 (i64.load (i32.const 0x610)) (i64.const 5) (i32.const 12))
         (call $proc_exit (i32.const 0))"
    ));
    let mut c = RunConfig::default();
    c.stdin = Input::Bytes(Arc::from(&b"hello"[..]));
    assert_eq!(run_code(&wat, &c), 0);
    // Null stdin: readable, at its end (hangup flag, 1 at offset 24 of the event).
    let wat = guest(
        "(call $sub_fd (i32.const 0x200) (i64.const 2) (i32.const 1) (i32.const 0))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 1) (i32.const 0x100)) (i32.const 0) (i32.const 1))
         (call $check_event (i32.const 0) (i64.const 2) (i32.const 0) (i32.const 1) (i32.const 2))
         (call $check (i32.load16_u (i32.const 0x618)) (i32.const 1) (i32.const 5))
         (call $proc_exit (i32.const 0))",
    );
    let mut c = RunConfig::default();
    c.stdin = Input::Null;
    assert_eq!(run_code(&wat, &c), 0);
}

/// Subscriptions on bad descriptors (not open, writing stdin, reading a directory or
/// stdout) give events with `badf` rather than failing the whole poll, while a stdin pipe
/// nobody writes stays not ready.
#[test]
fn bad_descriptors_give_events_with_badf() {
    let badf = errno(Errno::Badf);
    let wat = guest(&format!(
        "(call $sub_clock (i32.const 0x200) (i64.const 1) (i32.const 1) (i64.const {HOUR}) (i32.const 0))
         (call $sub_fd (i32.const 0x230) (i64.const 2) (i32.const 1) (i32.const 99))
         (call $sub_fd (i32.const 0x260) (i64.const 3) (i32.const 2) (i32.const 0))
         (call $sub_fd (i32.const 0x290) (i64.const 4) (i32.const 1) (i32.const 3))
         (call $sub_fd (i32.const 0x2c0) (i64.const 5) (i32.const 1) (i32.const 1))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 5) (i32.const 0x100)) (i32.const 0) (i32.const 1))
         (call $check (i32.load (i32.const 0x100)) (i32.const 4) (i32.const 2))
         ;; fd 99 not open; writing stdin; reading a directory; reading stdout
         (call $check_event (i32.const 0) (i64.const 2) (i32.const {badf}) (i32.const 1) (i32.const 3))
         (call $check_event (i32.const 1) (i64.const 3) (i32.const {badf}) (i32.const 2) (i32.const 6))
         (call $check_event (i32.const 2) (i64.const 4) (i32.const {badf}) (i32.const 1) (i32.const 9))
         (call $check_event (i32.const 3) (i64.const 5) (i32.const {badf}) (i32.const 1) (i32.const 12))
         (call $proc_exit (i32.const 0))"
    ));
    let dir = temp_dir("wasi-poll-badf");
    let mut c = RunConfig::default();
    c.preopens.push(Preopen { host: dir, guest: "/d".into(), read_only: false });
    // A stdin pipe nobody writes: the stdin read subscription is not ready.
    let (reader, writer) = std::io::pipe().unwrap();
    c.stdin = Input::File(Arc::new(std::fs::File::from(OwnedFd::from(reader))));
    assert_eq!(run_code(&wat, &c), 0);
    drop(writer);
}

/// A socketpair whose first end is the guest's stdin; the second is the host's.
fn socket_stdin() -> (RunConfig, UnixStream) {
    let (guest_end, host_end) = UnixStream::pair().unwrap();
    let mut c = RunConfig::default();
    c.stdin = Input::File(Arc::new(std::fs::File::from(OwnedFd::from(guest_end))));
    (c, host_end)
}

/// `sock_recv` on a socket given as stdin scatters into several buffers, peeks without
/// consuming, waits for all bytes with `waitall`, and sees the end of the stream once the
/// host closes its end; stdout is no socket.
#[test]
fn sock_recv_on_a_socket_stdin_scatters_peeks_and_waits_for_all() {
    let (notsock, badf, notsup) = (errno(Errno::Notsock), errno(Errno::Badf), errno(Errno::Notsup));
    let wat = guest(&format!(
        ";; iovecs: 2 bytes at 0xa00, 3 bytes at 0xb00
         (i32.store (i32.const 0x900) (i32.const 0xa00)) (i32.store (i32.const 0x904) (i32.const 2))
         (i32.store (i32.const 0x908) (i32.const 0xb00)) (i32.store (i32.const 0x90c) (i32.const 3))
         ;; poll says readable once the host wrote
         (call $sub_fd (i32.const 0x200) (i64.const 7) (i32.const 1) (i32.const 0))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 1) (i32.const 0x100)) (i32.const 0) (i32.const 1))
         (call $check_event (i32.const 0) (i64.const 7) (i32.const 0) (i32.const 1) (i32.const 2))
         ;; peek: 'pi' 'ng' and the data stays
         (call $check (call $sock_recv (i32.const 0) (i32.const 0x900) (i32.const 2) (i32.const 1) (i32.const 0xc00) (i32.const 0xc04)) (i32.const 0) (i32.const 5))
         (call $check (i32.load (i32.const 0xc00)) (i32.const 4) (i32.const 6))
         (call $check (i32.load16_u (i32.const 0xa00)) (i32.const 0x6970) (i32.const 7))
         (call $check (i32.load16_u (i32.const 0xb00)) (i32.const 0x676e) (i32.const 8))
         ;; waitall: 'pi' 'ng!' — the '!' comes later
         (i32.store (i32.const 0xb00) (i32.const 0))
         (call $check (call $sock_recv (i32.const 0) (i32.const 0x900) (i32.const 2) (i32.const 2) (i32.const 0xc00) (i32.const 0xc04)) (i32.const 0) (i32.const 10))
         (call $check (i32.load (i32.const 0xc00)) (i32.const 5) (i32.const 11))
         (call $check (i32.load (i32.const 0xb00)) (i32.const 0x21676e) (i32.const 12))
         (call $check (i32.load16_u (i32.const 0xc04)) (i32.const 0) (i32.const 13))
         ;; stdin is for reading only; stdout is no socket
         (call $check (call $sock_send (i32.const 0) (i32.const 0x900) (i32.const 1) (i32.const 0) (i32.const 0xc00)) (i32.const {badf}) (i32.const 20))
         (call $check (call $sock_shutdown (i32.const 0) (i32.const 3)) (i32.const {notsup}) (i32.const 21))
         (call $check (call $sock_accept (i32.const 0) (i32.const 0) (i32.const 0xc00)) (i32.const {notsup}) (i32.const 22))
         (call $check (call $sock_recv (i32.const 1) (i32.const 0x900) (i32.const 2) (i32.const 0) (i32.const 0xc00) (i32.const 0xc04)) (i32.const {notsock}) (i32.const 23))
         (call $check (call $sock_send (i32.const 2) (i32.const 0x900) (i32.const 1) (i32.const 0) (i32.const 0xc00)) (i32.const {notsock}) (i32.const 24))
         (call $check (call $sock_recv (i32.const 9) (i32.const 0x900) (i32.const 2) (i32.const 0) (i32.const 0xc00) (i32.const 0xc04)) (i32.const {badf}) (i32.const 25))
         ;; end of stream once the host closed its end
         (call $check (call $sock_recv (i32.const 0) (i32.const 0x900) (i32.const 2) (i32.const 0) (i32.const 0xc00) (i32.const 0xc04)) (i32.const 0) (i32.const 30))
         (call $check (i32.load (i32.const 0xc00)) (i32.const 0) (i32.const 31))
         (call $proc_exit (i32.const 0))"
    ));
    let (c, mut host) = socket_stdin();
    let run = start(&wat, &c);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(run.try_wait(), None, "the guest waits for data");
    host.write_all(b"ping").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    host.write_all(b"!").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(host);
    let exit = within(LIVENESS, move || run.wait());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
}

/// `sock_recv` on a stdin that is no socket is `notsock`.
#[test]
fn sock_recv_on_stdin_that_is_no_socket_is_notsock() {
    let notsock = errno(Errno::Notsock);
    let wat = guest(&format!(
        "(i32.store (i32.const 0x900) (i32.const 0xa00)) (i32.store (i32.const 0x904) (i32.const 2))
         (call $check (call $sock_recv (i32.const 0) (i32.const 0x900) (i32.const 1) (i32.const 0) (i32.const 0xc00) (i32.const 0xc04)) (i32.const {notsock}) (i32.const 1))
         (call $proc_exit (i32.const 0))"
    ));
    let mut c = RunConfig::default();
    c.stdin = Input::Bytes(Arc::from(&b"hello"[..]));
    assert_eq!(run_code(&wat, &c), 0);
    let (reader, writer) = std::io::pipe().unwrap();
    c.stdin = Input::File(Arc::new(std::fs::File::from(OwnedFd::from(reader))));
    assert_eq!(run_code(&wat, &c), 0);
    drop(writer);
}

/// A clock subscription beside a read subscription on a silent pipe fires alone.
#[test]
fn a_clock_beside_a_silent_pipe_fires_alone() {
    let (reader, writer) = std::io::pipe().unwrap();
    let wat = guest(
        "(call $sub_fd (i32.const 0x200) (i64.const 1) (i32.const 1) (i32.const 0))
         (call $sub_clock (i32.const 0x230) (i64.const 2) (i32.const 1) (i64.const 20000000) (i32.const 0))
         (call $sub_fd (i32.const 0x260) (i64.const 3) (i32.const 1) (i32.const 0))
         (call $check (call $poll (i32.const 0x200) (i32.const 0x600) (i32.const 3) (i32.const 0x100)) (i32.const 0) (i32.const 1))
         (call $check (i32.load (i32.const 0x100)) (i32.const 1) (i32.const 2))
         (call $check_event (i32.const 0) (i64.const 2) (i32.const 0) (i32.const 0) (i32.const 3))
         (call $proc_exit (i32.const 0))",
    );
    let mut c = RunConfig::default();
    c.stdin = Input::File(Arc::new(std::fs::File::from(OwnedFd::from(reader))));
    assert_eq!(run_code(&wat, &c), 0);
    drop(writer);
}

/// `sock_recv` of a datagram longer than the buffers reports the truncation flag, and
/// `waitall` does not join datagrams: the next one arrives whole.
#[test]
fn sock_recv_of_a_datagram_too_long_reports_truncation() {
    let wat = guest(
        ";; one 5-byte buffer; waitall does not join datagrams
         (i32.store (i32.const 0x900) (i32.const 0xa00)) (i32.store (i32.const 0x904) (i32.const 5))
         (call $check (call $sock_recv (i32.const 0) (i32.const 0x900) (i32.const 1) (i32.const 2) (i32.const 0xc00) (i32.const 0xc04)) (i32.const 0) (i32.const 1))
         (call $check (i32.load (i32.const 0xc00)) (i32.const 5) (i32.const 2))
         (call $check (i32.load16_u (i32.const 0xc04)) (i32.const 1) (i32.const 3))
         (call $check (i32.load8_u (i32.const 0xa04)) (i32.const 0x65) (i32.const 4))
         ;; the second datagram, whole
         (call $check (call $sock_recv (i32.const 0) (i32.const 0x900) (i32.const 1) (i32.const 2) (i32.const 0xc00) (i32.const 0xc04)) (i32.const 0) (i32.const 5))
         (call $check (i32.load (i32.const 0xc00)) (i32.const 2) (i32.const 6))
         (call $check (i32.load16_u (i32.const 0xc04)) (i32.const 0) (i32.const 7))
         (call $check (i32.load16_u (i32.const 0xa00)) (i32.const 0x7a79) (i32.const 8))
         (call $proc_exit (i32.const 0))",
    );
    let (guest_end, host_end) = std::os::unix::net::UnixDatagram::pair().unwrap();
    host_end.send(b"abcdef").unwrap();
    host_end.send(b"yz").unwrap();
    let mut c = RunConfig::default();
    c.stdin = Input::File(Arc::new(std::fs::File::from(OwnedFd::from(guest_end))));
    assert_eq!(run_code(&wat, &c), 0);
}
