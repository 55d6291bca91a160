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
use wasithreads::{ExitKind, Instance, Run, RunConfig, Val};

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
        // At most the baseline: a load's compile threads may still be leaving when it is taken.
        let left = settle(baseline);
        assert!(left <= baseline, "OS threads after 1600 concurrent runs: {left}, before: {baseline}");
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
        // At most the baseline: a load's compile threads may still be leaving when it is taken.
        let left = settle(baseline);
        assert!(left <= baseline, "OS threads: {left}, before: {baseline}");
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

/// Short-lived host threads, each making one call on one long-lived instance, keep
/// resident memory flat: the guest threads of host threads that exited serve the next
/// ones, so the instance's workers stay at the most calls ever in flight at once. The
/// test measures 10 000 such threads (4 at a time) after a warm-up of 2 000; the `plugin`
/// bench measures 100 000.
#[test]
fn short_lived_host_threads_calling_an_instance_keep_memory_flat() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !isolated("short_lived_host_threads_calling_an_instance_keep_memory_flat") {
        return;
    }
    within(LIMIT, || {
        let module = wasithreads::Module::new(&engine(), common::plugin::rust_plugin_bytes()).unwrap();
        let inst = std::sync::Arc::new(Instance::new(&module, &RunConfig::default()).unwrap());
        let wave = |threads: i32| {
            for i in (0..threads).step_by(4) {
                let batch: Vec<_> = (i..i + 4)
                    .map(|j| {
                        let inst = inst.clone();
                        std::thread::spawn(move || inst.call("add", &[Val::I32(j), Val::I32(1)]).unwrap())
                    })
                    .collect();
                for (j, t) in (i..).zip(batch) {
                    assert_eq!(t.join().unwrap(), [Val::I32(j + 1)]);
                }
            }
        };
        wave(2_000);
        let before = rss_kib();
        wave(10_000);
        let grown = rss_kib().saturating_sub(before);
        assert!(inst.idle_workers() <= 4, "{} workers for at most 4 calls at once", inst.idle_workers());
        assert!(grown < 2048, "RSS grew by {grown} KiB over 10 000 host threads making one call each");
        assert_eq!(inst.close().kind, ExitKind::Cancelled);
    });
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `VmRSS` or `VmSize` of this process, KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Mappings of this process.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

/// A guest that defines `extra` (WAT) in every instance and whose `_start` tries
/// `spawns` spawns (each thread waits forever), writes "done" to stdout, then waits
/// forever itself.
fn spawner(extra: &str, spawns: u32) -> String {
    format!(
        r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (data (memory 0) (i32.const 64) "done")
  {extra}
  (func (export "wasi_thread_start") (param i32 i32)
    (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1))))
  (func (export "_start") (local $n i32)
    (loop $more
      (drop (call $spawn (i32.const 0)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $n) (i32.const {spawns}))))
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 4))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
    (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))))"#
    )
}

/// Runs `module` (a [`spawner`] of `spawns`) in the background until it tried every
/// spawn, calls `measure` while its threads hold what they took, then cancels it.
/// Returns the threads started (the main one included) and the spawns refused.
fn hold_and_measure(
    module: &wasithreads::Module,
    config: RunConfig,
    spawns: usize,
    measure: impl FnOnce(),
) -> (usize, usize) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let mut config = config;
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    config.hooks.on_thread_start = Some(Arc::new(move |_| {
        s.fetch_add(1, Ordering::SeqCst);
    }));
    let out = Capture::default();
    config.stdout = out.output();
    let run = Run::start_background(module, &config).unwrap();
    let done = || out.text() == "done";
    for _ in 0..12_000 {
        if done() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(done(), "the guest did not finish spawning");
    measure();
    run.cancel();
    assert_eq!(run.wait().kind, ExitKind::Cancelled);
    let started = started.load(Ordering::SeqCst);
    (started, spawns + 1 - started)
}

/// Row 8 of issue 20: a module with 999 000 mutable globals and 24 threads under
/// `max_memory` 1 MiB took 0.7-1.1 GB of host memory (~27 MB per thread, counted
/// against nothing). Each instance now counts against `max_instance_bytes` (default
/// 256 MiB): 8 instances of ~32 MB fit, the other spawns are refused, and the run's
/// resident memory stays within the cap.
#[test]
fn instances_of_a_million_globals_stay_within_the_instance_cap() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !isolated("instances_of_a_million_globals_stay_within_the_instance_cap") {
        return;
    }
    within(LIMIT, || {
        let e = engine();
        let module = load(&e, &spawner(&"(global (mut i32) (i32.const 0))\n".repeat(999_000), 23));
        let mut config = RunConfig::default();
        config.limits.max_memory = Some(1 << 20);
        let before = status_kib("VmRSS:");
        let mut held = 0;
        let (started, refused) = hold_and_measure(&module, config, 23, || held = status_kib("VmRSS:") - before);
        eprintln!("999 000 globals: {started} threads started, {refused} refused; RSS +{} MiB", held >> 10);
        assert_eq!(started + refused, 24);
        assert!(refused > 0 && started <= 8, "{started} instances of ~32 MB within 256 MiB");
        let cap_kib = wasithreads::limits::DEFAULT_MAX_INSTANCE_BYTES >> 10;
        assert!(held < cap_kib + (64 << 10), "RSS grew by {held} KiB with {started} threads");
    });
}

/// Row 9 of issue 20: threads each instantiating 98 private memories of 0 pages took
/// 127-130 TiB of address space and 65 000 mappings (325 threads). The run's private
/// memories are now capped (default 1024, ~4 TiB): 10 instances hold 980 memories, the
/// other spawns are refused, and the address space and mappings the run takes stay
/// within the cap.
#[test]
fn zero_page_memories_stay_within_the_memory_cap() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !isolated("zero_page_memories_stay_within_the_memory_cap") {
        return;
    }
    within(LIMIT, || {
        let e = engine();
        let module = load(&e, &spawner(&"(memory 0 0)\n".repeat(98), 324));
        let (vm0, maps0) = (status_kib("VmSize:"), mappings());
        let (mut vm, mut maps) = (0, 0);
        let (started, refused) = hold_and_measure(&module, RunConfig::default(), 324, || {
            vm = status_kib("VmSize:") - vm0;
            maps = mappings() - maps0;
        });
        eprintln!(
            "98 memories of 0 pages: {started} threads started, {refused} refused; address space +{} GiB, mappings +{maps}",
            vm >> 20
        );
        assert_eq!((started, refused), (10, 315));
        // 980 memories of 4 GiB + 32 MiB, the threads' stacks and Wasmtime's own.
        assert!(vm < (4200u64 << 20), "address space grew by {} GiB", vm >> 20);
        assert!(maps < 3000, "{maps} more mappings");
    });
}

/// The peak resident memory of this process so far (KiB).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Two hundred threads each list a directory of 30 000 entries with 255-byte names (an
/// 8 MB listing) into one 8 MB buffer of a 10 MiB memory, through descriptors of their
/// own, all at once: the host's listing buffers are copy grants, charged to the run's
/// copy budget (64 MiB, plus 64 KiB per call), so the peak resident memory grows by far
/// less than 200 listings (it grew by 350-430 MB when each call built its listing whole).
#[test]
fn two_hundred_listings_of_a_huge_directory_stay_within_the_copy_budget() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !isolated("two_hundred_listings_of_a_huge_directory_stay_within_the_copy_budget") {
        return;
    }
    let dir = temp_dir("readdir-rss");
    for i in 0..30_000 {
        std::fs::File::create(dir.join(format!("{}{i:06}", "x".repeat(249)))).unwrap();
    }
    let threads = 200;
    // Thread `arg` opens the directory, bumps 0x300, waits for every thread to have
    // opened it (0x304 set by main), lists it `rounds` times into `len` bytes at 0x10000,
    // checks the whole listing came (8 MB used when len is 8 MB), bumps 0x308.
    let guest = move |len: u32, rounds: u32| {
        let fd = "(i32.add (i32.const 0x1000) (i32.mul (local.get $arg) (i32.const 4)))";
        let used = "(i32.add (i32.const 0x2000) (i32.mul (local.get $arg) (i32.const 4)))";
        wasi_guest(
            160,
            r#"(data (i32.const 0x100) ".")"#,
            &format!(
                r#"
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (local $k i32)
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x100) (i32.const 1) (i32.const 2)
          (i64.const 2) (i64.const 0) (i32.const 0) {fd})
      (then (call $proc_exit (i32.const 90))))
    (call $bump (i32.const 0x300))
    (call $wait_count (i32.const 0x304) (i32.const 1))
    (loop $again
      (if (call $fd_readdir (i32.load {fd}) (i32.const 0x10000) (i32.const {len}) (i64.const 0) {used})
        (then (call $proc_exit (i32.const 91))))
      (if (i32.and (i32.eq (i32.const {len}) (i32.const 0x800000)) (i32.lt_u (i32.load {used}) (i32.const 0x7d0000)))
        (then (call $proc_exit (i32.const 92))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $k) (i32.const {rounds}))))
    (call $bump (i32.const 0x308)))
  (func (export "_start")
    (local $i i32)
    (loop $spawn
      (if (i32.lt_s (call $spawn (local.get $i)) (i32.const 0)) (then (call $proc_exit (i32.const 93))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spawn (i32.lt_u (local.get $i) (i32.const {threads}))))
    (call $wait_count (i32.const 0x300) (i32.const {threads}))
    (i32.atomic.store (i32.const 0x304) (i32.const 1))
    (drop (memory.atomic.notify (i32.const 0x304) (i32.const -1)))
    (call $wait_count (i32.const 0x308) (i32.const {threads}))
    (call $proc_exit (i32.const 0)))"#
            ),
        )
    };
    within(LIMIT, move || {
        let e = engine();
        let mut config = RunConfig::default();
        config.preopens.push(sandbox_preopen(&dir));
        config.limits.max_fds = 1024;
        // The same run with 24-byte listings first: the peak of 200 threads alone.
        let (exit, _) = run_watched(&load(&e, &guest(24, 1)), &config);
        assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
        let before = peak_rss_kib();
        // Not `run_watched`: 200 listings of 8 MB may take a minute on a loaded machine.
        let exit = Run::start(&load(&e, &guest(0x80_0000, 1)), &config).unwrap().wait();
        assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
        let grown = peak_rss_kib().saturating_sub(before);
        eprintln!("peak RSS {before} KiB, grew by {grown} KiB with 200 threads listing 8 MB each");
        assert!(grown < 200 << 10, "peak RSS grew by {grown} KiB: listing buffers are not bounded");
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// A trap after growing a private memory to 1 GiB (one page of it written) writes a core
/// dump holding that memory, and the peak resident memory stays where it was: the dump
/// reads the private memory where it is, as it does the shared one (it grew by 1 GB when
/// the trapping thread copied its private memories).
#[test]
fn a_core_dump_streams_a_huge_private_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !isolated("a_core_dump_streams_a_huge_private_memory") {
        return;
    }
    let wat = r#"(module
      (import "env" "memory" (memory 1 1 shared))
      (memory $p 1 16385)
      (func (export "wasi_thread_start") (param i32 i32))
      (func (export "_start")
        (if (i32.lt_s (memory.grow $p (i32.const 16384)) (i32.const 0)) (then (return)))
        (i64.store $p (i32.const 0x30000000) (i64.const 0x1122334455667788))
        unreachable))"#;
    let path = temp_dir("coredump-rss").join("core.wasm");
    let dump_path = path.clone();
    within(LIMIT, move || {
        let module = load(&engine(), wat);
        let config = RunConfig { coredump_path: Some(dump_path.clone()), ..RunConfig::default() };
        let before = peak_rss_kib();
        let (exit, _) = run_watched(&module, &config);
        assert_eq!(exit.kind, ExitKind::Trap, "{exit:?}");
        let grown = peak_rss_kib().saturating_sub(before);
        eprintln!("peak RSS {before} KiB, grew by {grown} KiB dumping a 1 GiB private memory");
        assert!(grown < 256 << 10, "peak RSS grew by {grown} KiB: the private memory was copied");
        let dump = std::fs::read(&dump_path).expect("the core dump was written");
        let (mut pages, mut marker) = (Vec::new(), false);
        for payload in wasmparser::Parser::new(0).parse_all(&dump) {
            match payload.unwrap() {
                wasmparser::Payload::MemorySection(r) => pages.extend(r.into_iter().map(|m| m.unwrap().initial)),
                wasmparser::Payload::DataSection(r) => {
                    for d in r {
                        let d = d.unwrap();
                        let needle = 0x1122334455667788u64.to_le_bytes();
                        marker |= d.data.windows(8).any(|w| w == needle);
                    }
                }
                _ => {}
            }
        }
        assert_eq!(pages, [1, 16385], "the shared memory and the private one, at its size");
        assert!(marker, "the private memory's contents are in the dump");
    });
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
