//! Host loops whose length the guest chooses (`fd_readdir` of a huge directory,
//! `poll_oneoff` with a million subscriptions) stop when the run ends, instead of running
//! to the end of the call.
//!
//! The bounds are generous (stops take well under a millisecond per thread; the calls
//! themselves take tens to hundreds of milliseconds each, and several threads make them at
//! once on a shared machine): what is under test is that the run does not wait for the
//! calls to finish.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::wasi::*;
use crate::common::*;
use wasithreads::{ExitKind, Run, RunConfig, RunExit};

/// Entries of the big directory.
pub const ENTRIES: usize = 30_000;

/// A directory of [`ENTRIES`] empty files named by `name`, made once per test binary.
pub fn big_dir(tag: &str, name: impl Fn(usize) -> String) -> std::path::PathBuf {
    let dir = temp_dir(tag);
    for i in 0..ENTRIES {
        std::fs::File::create(dir.join(name(i))).unwrap();
    }
    dir
}

/// Starts `module` with `config` plus a thread-start hook, waits until `threads` guest
/// threads started and `settle` more, cancels, and returns the exit, the thread exits and
/// how long the cancel took (bounded: a run that never ends fails the test).
fn cancel_when_started(
    module: &wasithreads::Module,
    mut config: RunConfig,
    threads: usize,
    settle: Duration,
) -> (RunExit, Vec<(i32, wasithreads::ThreadExit)>, Duration) {
    let module = module.clone();
    within(Duration::from_secs(120), move || {
        let started = Arc::new(AtomicUsize::new(0));
        let s = started.clone();
        config.hooks.on_thread_start = Some(Arc::new(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        }));
        let exits = Exits::default();
        exits.install(&mut config);
        let run = Run::start(&module, &config).expect("run starts");
        let t = Instant::now();
        while started.load(Ordering::SeqCst) < threads && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(settle);
        let t = Instant::now();
        run.cancel();
        let exit = run.wait();
        (exit, exits.sorted(), t.elapsed())
    })
}

/// The end of `_start` in the guests below: spawn threads with arguments 0 to
/// `threads - 1`, wait until each has bumped 0x300, sleep an hour.
fn spawn_and_sleep(threads: u32) -> String {
    let spawns: String = (0..threads).map(|i| format!("(drop (call $spawn (i32.const {i})))")).collect();
    format!("{spawns} (call $wait_count (i32.const 0x300) (i32.const {threads})) (call $sleep (i64.const {HOUR_NS}))")
}

/// Three runs of `module` (main and `threads` threads), each cancelled `settle` after
/// every thread started: each ends cancelled, every thread terminated. The longest
/// cancel.
fn worst_of_three_cancels(
    module: &wasithreads::Module,
    config: &RunConfig,
    threads: usize,
    settle: Duration,
) -> Duration {
    let mut worst = Duration::ZERO;
    for _ in 0..3 {
        let (exit, exits, took) = cancel_when_started(module, config.clone(), threads + 1, settle);
        assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
        assert!(exit.unstopped.is_empty(), "{exit:?}");
        assert_eq!(exits.len(), threads + 1, "{exits:?}");
        assert!(exits.iter().all(|(_, how)| how.is_terminated()), "{exits:?}");
        worst = worst.max(took);
    }
    worst
}

/// Eight threads list a 30 000-entry directory over and over, each through a descriptor of
/// its own: four read it whole into a 4 MiB buffer, four alternate a 24-byte read at
/// cookie 0 and one at the last cookie (which rewinds and skips 30 000 entries). Cancel stops
/// them all at once: the fill and skip loops check for the run's end at every entry.
/// (They did not: the run waited for each thread's current listing, 16-226 ms.)
#[test]
fn cancel_stops_threads_listing_a_huge_directory() {
    let dir = big_dir("readdir-stop", |i| format!("entry-{i:06}"));
    let slot = |base: u32| format!("(i32.add (i32.const {base}) (i32.mul (local.get $arg) (i32.const 4)))");
    let body = format!(
        r#"
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (local $fd i32)
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x100) (i32.const 1) (i32.const {DIRECTORY})
          (i64.const {FD_READ}) (i64.const 0) (i32.const 0) {fd_slot})
      (then (call $proc_exit (i32.const 90))))
    (local.set $fd (i32.load {fd_slot}))
    (call $bump (i32.const 0x300))
    (if (i32.and (local.get $arg) (i32.const 1))
      (then
        (loop $skip
          (drop (call $fd_readdir (local.get $fd) (i32.const 0x1000) (i32.const 24) (i64.const 0) {used}))
          (drop (call $fd_readdir (local.get $fd) (i32.const 0x1000) (i32.const 24) (i64.const {last}) {used}))
          (br $skip)))
      (else
        (loop $fill
          (drop (call $fd_readdir (local.get $fd) (i32.const 0x10000) (i32.const 0x400000) (i64.const 0) {used}))
          (br $fill)))))
  (func (export "_start")
    {spawns})"#,
        spawns = spawn_and_sleep(8),
        fd_slot = slot(0x200),
        used = slot(0x280),
        last = ENTRIES + 1,
    );
    let module = load(&engine(), &wasi_guest(80, r#"(data (i32.const 0x100) ".")"#, &body));
    let mut config = RunConfig::default();
    config.preopens.push(sandbox_preopen(&dir));
    let worst = worst_of_three_cancels(&module, &config, 8, Duration::from_millis(200));
    eprintln!("fd_readdir of {ENTRIES} entries: worst cancel {worst:?}");
    assert!(worst < Duration::from_millis(60), "cancel took {worst:?} with threads in fd_readdir");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Subscription `i` of `poll_oneoff` (48 bytes) at `subs`: an `fd_read` of `fd`.
const SUB_SIZE: u32 = 48;

/// Four threads call `poll_oneoff` with 2^20 `fd_read` subscriptions on one regular file,
/// over and over. Cancel stops them at once: both passes over the subscriptions check for
/// the run's end often, and a file's end-of-file state is asked once per call, not once
/// per subscription. (The run waited up to a whole pass: 14-218 ms.)
#[test]
fn cancel_stops_threads_polling_a_million_subscriptions() {
    let dir = temp_dir("poll-stop");
    std::fs::write(dir.join("f"), b"data").unwrap();
    let n: u32 = 1 << 20;
    let subs: u32 = 0x10_0000;
    let events = subs + n * SUB_SIZE;
    let pages = (events + n * 32) / 65536 + 1;
    let body = format!(
        r#"
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $bump (i32.const 0x300))
    (loop $again
      (drop (call $poll (i32.const {subs}) (i32.const {events}) (i32.const {n})
        (i32.add (i32.const 0x280) (i32.mul (local.get $arg) (i32.const 4)))))
      (br $again)))
  (func (export "_start")
    (local $i i32) (local $p i32)
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x100) (i32.const 1) (i32.const 0)
          (i64.const {FD_READ}) (i64.const 0) (i32.const 0) (i32.const 0x200))
      (then (call $proc_exit (i32.const 90))))
    (local.set $p (i32.const {subs}))
    (loop $fill
      (i64.store (local.get $p) (i64.extend_i32_u (local.get $i)))
      (i32.store8 offset=8 (local.get $p) (i32.const 1))
      (i32.store offset=16 (local.get $p) (i32.load (i32.const 0x200)))
      (local.set $p (i32.add (local.get $p) (i32.const {SUB_SIZE})))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const {n}))))
    {spawns})"#,
        spawns = spawn_and_sleep(4),
    );
    let module = load(&engine(), &wasi_guest(pages, r#"(data (i32.const 0x100) "f")"#, &body));
    let mut config = RunConfig::default();
    config.preopens.push(sandbox_preopen(&dir));
    let worst = worst_of_three_cancels(&module, &config, 4, Duration::from_millis(300));
    eprintln!("poll_oneoff of {n} subscriptions: worst cancel {worst:?}");
    assert!(worst < Duration::from_millis(60), "cancel took {worst:?} with threads in poll_oneoff");
    std::fs::remove_dir_all(&dir).unwrap();
}
