//! Ending a run: cancel, timeout and drop stop every thread wherever it is (blocked in
//! WASI, in an atomic wait, in a start function, in code without loops, in a spawn storm),
//! exactly one result comes back, and a thread that cannot be stopped is named instead of
//! hanging the host.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::child::isolated;
use crate::common::wasi::*;
use crate::common::*;
use wasithreads::io::Input;
use wasithreads::{EngineConfig, ExitKind, Run, RunConfig, RunExit};

/// Cancel ends a run whose threads spin, wait (32 and 64 bit), sleep an hour and read an
/// empty stdin pipe, every thread terminated; later `cancel`, `wait` and `try_wait` agree
/// with the first result and change nothing.
#[test]
fn cancel_stops_threads_in_every_blocked_state() {
    // Bounded: a deadlock fails this test instead of hanging the suite.
    within(Duration::from_secs(120), || {
        let e = engine();
        let (reader, writer) = std::io::pipe().unwrap();
        let stdin = Input::File(Arc::new(std::fs::File::from(std::os::fd::OwnedFd::from(reader))));
        let modes = [SPIN, WAIT_FOREVER, WAIT64_FOREVER, SLEEP_HOUR, READ_STDIN];
        // Main itself waits forever after every thread started, and says so at address 900.
        let m = load(
            &e,
            &guest(&format!(
                "{} (i32.atomic.store (i32.const 900) (i32.const 1)) (call $behave (i32.const {WAIT_FOREVER}))",
                spawn_all(&modes)
            )),
        );
        let exits = Exits::default();
        let mut c = RunConfig::default();
        c.stdin = stdin;
        exits.install(&mut c);
        let run = Run::start_background(&m, &c).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(run.try_wait(), None, "still running");
        run.cancel();
        let exit = run.wait();
        assert_eq!(exit, RunExit { kind: ExitKind::Cancelled, code: 0, tid: -1, message: None, unstopped: vec![] });
        let got = exits.sorted();
        assert_eq!(got.len(), modes.len() + 1, "{got:?}");
        assert!(got.iter().all(|(_, h)| h.is_terminated()), "{got:?}");
        // Later calls agree and do nothing more.
        run.cancel();
        assert_eq!(run.wait(), exit);
        assert_eq!(run.try_wait(), Some(exit));
        drop(writer);
    });
}

/// A cancel racing the guest's own `proc_exit` (300 times, at moments spread before,
/// around and after it) gives exactly one result, either the exit or the cancel, stable
/// across later calls, and every thread reports its end exactly once.
#[test]
fn cancel_racing_natural_exit_gives_exactly_one_result() {
    // Bounded: a deadlock fails this test instead of hanging the suite.
    within(Duration::from_secs(120), || {
        let e = engine();
        let m = load(&e, &guest(&format!("{} (call $proc_exit (i32.const 5))", spawn_all(&[SPIN, WAIT_FOREVER]))));
        let (mut cancelled, mut exited) = (0, 0);
        for i in 0..300 {
            let exits = Exits::default();
            let mut c = RunConfig::default();
            exits.install(&mut c);
            let run = Run::start_background(&m, &c).unwrap();
            // Cancel at spread-out moments: before, around and after the guest's own exit.
            spin_for(Duration::from_micros((i % 10) as u64 * 500));
            run.cancel();
            let exit = run.wait();
            match exit.kind {
                ExitKind::Code => {
                    assert_eq!((exit.code, exit.tid), (5, 0));
                    exited += 1;
                }
                ExitKind::Cancelled => cancelled += 1,
                other => panic!("iteration {i}: unexpected {other:?}"),
            }
            assert_eq!(run.try_wait(), Some(exit.clone()), "one result, stable");
            drop(run);
            let got = exits.sorted();
            // Every thread that existed reported exactly once.
            let mut tids: Vec<i32> = got.iter().map(|(t, _)| *t).collect();
            tids.dedup();
            assert_eq!(tids.len(), got.len(), "iteration {i}: {got:?}");
            assert_eq!(got[0].0, 0);
        }
        eprintln!("cancel race: {cancelled} cancelled, {exited} exited first");
    });
}

/// Dropping a run that is still going cancels it and joins its threads: every thread has
/// reported its end before the drop returns, so nothing outlives the handle.
#[test]
fn dropping_a_running_run_cancels_and_joins_it() {
    // Bounded: a deadlock fails this test instead of hanging the suite.
    within(Duration::from_secs(120), || {
        let e = engine();
        let m = load(&e, &guest(&format!("{} (loop $l (br $l))", spawn_all(&[SPIN, WAIT_FOREVER, SLEEP_HOUR]))));
        let exits = Exits::default();
        let mut c = RunConfig::default();
        exits.install(&mut c);
        let run = Run::start_background(&m, &c).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(run);
        let got = exits.sorted();
        assert_eq!(got.len(), 4, "all threads reported before drop returned: {got:?}");
        assert!(got.iter().all(|(_, h)| h.is_terminated()));
    });
}

/// The timeout of a background run is enforced even when nobody waits for the run.
#[test]
fn timeout_on_a_background_run_nobody_waits_for() {
    let e = engine();
    let m = load(&e, &guest(&format!("{} (loop $l (br $l))", spawn_all(&[SPIN]))));
    let mut c = RunConfig::default();
    c.timeout = Some(Duration::from_millis(50));
    let run = Run::start_background(&m, &c).unwrap();
    eventually("the supervisor to end the run", || run.try_wait().is_some());
    assert_eq!(run.try_wait().unwrap().kind, ExitKind::Timeout);
}

/// Polling `try_wait` alone (never `wait`) still sees the timeout end the run.
#[test]
fn try_wait_alone_enforces_the_timeout() {
    let engine = engine();
    let module = load(&engine, "(module (memory (export \"memory\") 1) (func (export \"_start\") (loop $l (br $l))))");
    let exit = within(Duration::from_secs(60), move || {
        let mut config = RunConfig::default();
        config.timeout = Some(Duration::from_millis(50));
        let run = Run::start(&module, &config).unwrap();
        loop {
            if let Some(exit) = run.try_wait() {
                return exit;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    assert_eq!(exit.kind, ExitKind::Timeout, "{exit:?}");
}

/// A run with no timeout and a main that loops forever ends on cancel.
#[test]
fn infinite_loop_without_timeout_is_ended_by_cancel() {
    // Bounded: a deadlock fails this test instead of hanging the suite.
    within(Duration::from_secs(120), || {
        let e = engine();
        let m = load(&e, "(module (func (export \"_start\") (loop $l (br $l))))");
        let run = Run::start_background(&m, &RunConfig::default()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(run.try_wait().is_none());
        run.cancel();
        assert_eq!(run.wait().kind, ExitKind::Cancelled);
    });
}

/// A start function (the wasm `start` section) that never returns runs where timeout and
/// cancel reach it, not on the host's thread inside `Run::start`.
#[test]
fn start_function_that_never_returns_is_stopped() {
    // Bounded: a deadlock fails this test instead of hanging the suite.
    within(Duration::from_secs(120), || {
        let e = engine();
        let m = load(
            &e,
            r#"(module
        (import "env" "memory" (memory 1 1 shared))
        (func $forever (loop $l (br $l)))
        (start $forever)
        (func (export "_start")))"#,
        );
        let mut c = RunConfig::default();
        c.timeout = Some(std::time::Duration::from_millis(50));
        let (exit, _) = run_watched(&m, &c);
        assert_eq!(exit.kind, ExitKind::Timeout);
        let run = Run::start_background(&m, &RunConfig::default()).unwrap();
        run.cancel();
        assert_eq!(run.wait().kind, ExitKind::Cancelled);
        // A start function that traps ends the run as a trap of the main thread.
        let m = load(&e, r#"(module (func $boom unreachable) (start $boom) (func (export "_start")))"#);
        let (exit, _) = run_watched(&m, &RunConfig::default());
        assert_eq!((exit.kind, exit.tid), (ExitKind::Trap, 0));
        assert!(exit.message.unwrap().contains("unreachable"));
    });
}

/// A module whose start function spins forever in every spawned thread's
/// instance (the first instance skips it) — the spawner waits for that instantiation —
/// still ends on cancel at once.
#[test]
fn cancel_stops_a_start_function_spinning_in_a_spawned_thread() {
    let wat = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func $start
    (if (i32.atomic.load (i32.const 0)) (then (loop $l (br $l)))))
  (start $start)
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start")
    (i32.atomic.store (i32.const 0) (i32.const 1))
    (drop (call $spawn (i32.const 0)))
    (loop $l (br $l))))"#;
    let (exit, took) = cancel_after(wat, RunConfig::default(), Duration::from_millis(200));
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
}

/// One run with a thread blocked in each place a guest can block — a FIFO read
/// with no writer, a write-only FIFO open with no reader, a poll on a FIFO, two readers of
/// an empty stdin pipe, a write to a full FIFO, an atomic wait forever, a spin, an hour's
/// sleep, `fd_sync` loops — ends on cancel within a second, and leaves no descriptor or
/// thread behind.
#[test]
fn cancel_stops_threads_blocked_everywhere_and_leaks_nothing() {
    if !isolated("cancel_stops_threads_blocked_everywhere_and_leaks_nothing") {
        return;
    }
    let dir = temp_dir("attack-blocking");
    for f in ["r", "w", "p", "f"] {
        mkfifo(&dir.join(f));
    }
    std::fs::write(dir.join("file"), b"data").unwrap();
    let open = |name_addr: u32, rights: i64| {
        format!(
            "(drop (call $path_open (i32.const 3) (i32.const 0) (i32.const {name_addr}) (i32.const 1) (i32.const 0) \
             (i64.const {rights}) (i64.const 0) (i32.const 0) (i32.add (i32.const 0x200) (i32.mul (local.get $arg) (i32.const 4)))))"
        )
    };
    let fd = "(i32.load (i32.add (i32.const 0x200) (i32.mul (local.get $arg) (i32.const 4))))";
    let body = format!(
        r#"
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (i32.store (i32.const 0x700) (i32.const 0x800))
    (i32.store (i32.const 0x704) (i32.const 0x10000))
    (block $b9 (block $b8 (block $b7 (block $b6 (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
      (br_table $b0 $b1 $b2 $b3 $b4 $b5 $b6 $b7 $b8 $b9 (local.get $arg)))
      ;; 0: read a FIFO nobody writes
      {open_r} (call $bump (i32.const 0x300))
      (drop (call $fd_read {fd} (i32.const 0x700) (i32.const 1) (i32.const 0x720))) (return))
      ;; 1: open a FIFO for writing while nobody reads it
      (call $bump (i32.const 0x300)) {open_w} (return))
      ;; 2: poll a FIFO nobody writes
      {open_p} (call $bump (i32.const 0x300))
      (i64.store (i32.const 0x1000) (i64.const 7))
      (i32.store8 (i32.const 0x1008) (i32.const 1))
      (i32.store (i32.const 0x1010) {fd})
      (drop (call $poll (i32.const 0x1000) (i32.const 0x1100) (i32.const 1) (i32.const 0x1200))) (return))
      ;; 3, 4: read stdin (a pipe nobody writes)
      (call $bump (i32.const 0x300))
      (drop (call $fd_read (i32.const 0) (i32.const 0x700) (i32.const 1) (i32.const 0x720))) (return))
      (call $bump (i32.const 0x300))
      (drop (call $fd_read (i32.const 0) (i32.const 0x700) (i32.const 1) (i32.const 0x724))) (return))
      ;; 5: write a FIFO (opened read+write) until it is full
      {open_f} (call $bump (i32.const 0x300))
      (loop $w (drop (call $fd_write {fd} (i32.const 0x700) (i32.const 1) (i32.const 0x728))) (br $w)))
      ;; 6: wait forever
      (call $bump (i32.const 0x300))
      (drop (memory.atomic.wait32 (i32.const 0x600) (i32.const 0) (i64.const -1))) (return))
      ;; 7: spin
      (call $bump (i32.const 0x300)) (loop $s (br $s)))
      ;; 8: sleep an hour
      (call $bump (i32.const 0x300)) (call $sleep (i64.const {HOUR_NS})) (return))
    ;; 9: fd_sync a file in a loop
    {open_file} (call $bump (i32.const 0x300))
    (loop $y (drop (call $fd_sync {fd})) (br $y)))
  (func (export "_start")
    (local $k i32)
    (loop $s
      (if (i32.lt_s (call $spawn (local.get $k)) (i32.const 0)) (then (call $proc_exit (i32.const 100))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $k) (i32.const 10))))
    (call $wait_count (i32.const 0x300) (i32.const 10))
    (i32.atomic.store (i32.const 0x304) (i32.const 1))
    (call $sleep (i64.const {HOUR_NS})))"#,
        open_r = open(0x100, FD_READ),
        open_w = open(0x101, FD_WRITE),
        open_p = open(0x102, FD_READ),
        open_f = open(0x103, FD_READ | FD_WRITE),
        open_file = open(0x104, FD_READ | FD_WRITE),
    );
    let wat = wasi_guest(2, r#"(data (i32.const 0x100) "rwpfX")"#, &body);
    std::fs::rename(dir.join("file"), dir.join("X")).unwrap();
    let engine = engine();
    let module = load(&engine, &wat);
    let (fds0, threads0) = settled();
    {
        let (read_end, write_end) = rustix::pipe::pipe().unwrap();
        let mut c = RunConfig::default();
        c.preopens.push(sandbox_preopen(&dir));
        c.stdin = wasithreads::Input::File(Arc::new(std::fs::File::from(read_end)));
        c.stdout = wasithreads::Output::Null;
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let s2 = started.clone();
        c.hooks.on_thread_start = Some(Arc::new(move |_| {
            s2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
        let exits = Exits::default();
        exits.install(&mut c);
        let run = Run::start(&module, &c).expect("run starts");
        let t = Instant::now();
        while started.load(std::sync::atomic::Ordering::SeqCst) < 11 && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        run.cancel();
        let exit = run.wait();
        let took = t.elapsed();
        assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
        assert!(exit.unstopped.is_empty(), "{exit:?}");
        assert!(took < Duration::from_secs(1), "cancel took {took:?}");
        let got = exits.sorted();
        assert_eq!(got.len(), 11, "{got:?}");
        assert!(got.iter().all(|(_, h)| h.is_terminated()), "{got:?}");
        drop(write_end);
    }
    assert_eq!(settled(), (fds0, threads0), "descriptors and threads back to baseline");
}

/// Cancel ends a run within a few hundred milliseconds while a thread is in a 1 GiB
/// `random_get` (about 2 s of the kernel's RNG): the call checks between chunks whether
/// the run is ending. Otherwise threads doing it would outlast the teardown grace and burn
/// CPU after the run returned.
#[test]
fn cancel_interrupts_a_huge_random_get() {
    let body = r#"
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start")
    (i32.atomic.store (i32.const 0x300) (i32.const 1))
    (drop (call $random (i32.const 0) (i32.const 0x40000000))))"#;
    let wat = wasi_guest(16384, "", body);
    let (exit, took) = cancel_after(&wat, RunConfig::default(), Duration::from_millis(150));
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
    assert!(took < Duration::from_millis(500), "cancel took {took:?} while a thread was in random_get(1 GiB)");
}

/// A spawn storm (every thread spawns two more, then spins) at the thread limit
/// ends on cancel promptly and leaves no thread behind.
#[test]
fn cancel_stops_a_spawn_storm_at_the_thread_limit() {
    if !isolated("cancel_stops_a_spawn_storm_at_the_thread_limit") {
        return;
    }
    let wat = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func $storm
    (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 0)))
    (loop $l (br $l)))
  (func (export "wasi_thread_start") (param i32 i32) (call $storm))
  (func (export "_start") (call $storm)))"#;
    // Compiling starts the compiler's thread pool, which stays: before the baseline.
    drop(load(&engine(), wat));
    let (_, threads0) = settled();
    let mut c = RunConfig::default();
    c.limits.max_threads = 200;
    let (exit, took) = cancel_after(wat, c, Duration::from_millis(500));
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
    assert!(exit.unstopped.is_empty(), "{exit:?}");
    assert!(took < Duration::from_secs(2), "cancel took {took:?}");
    let after = settled().1;
    let names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap_or_default().trim().to_string())
        .collect();
    assert_eq!(after, threads0, "threads left after the run: {names:?}");
}

/// Atomic waits on a shared memory that is not memory 0 are interruptible too: cancel
/// ends the run.
#[test]
fn waits_on_a_shared_memory_at_index_one_are_stopped_by_cancel() {
    let wat = r#"(module
      (memory $private 1)
      (memory $shared (export "memory") 1 1 shared)
      (func (export "_start")
        (drop (memory.atomic.wait32 $shared (i32.const 0) (i32.const 0) (i64.const -1)))))"#;
    let engine = engine();
    let module = load(&engine, wat);
    let exit = within(Duration::from_secs(60), move || {
        let run = Run::start(&module, &RunConfig::default()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        run.cancel();
        run.wait()
    });
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
}

/// A thread that cannot be stopped in time (inside a 3 s host callback when the timeout
/// comes) does not hang the run: after the teardown grace the result comes back naming
/// that thread as unstopped, and a diagnostic says so.
#[test]
fn a_thread_that_does_not_stop_is_named_and_the_run_still_ends() {
    // The main thread is inside an output callback that takes 3 s (host code, which no
    // teardown can interrupt) when the timeout ends the run: with a 200 ms grace the
    // result comes back without it, and says so.
    let engine = engine();
    let module = load(&engine, &crate::common::guest("(call $print (i32.const 1000) (i32.const 18))"));
    let mut config = RunConfig::default();
    config.timeout = Some(Duration::from_millis(100));
    config.teardown_grace = Duration::from_millis(200);
    config.stdout = wasithreads::Output::Callback(Arc::new(|_, _| std::thread::sleep(Duration::from_secs(3))));
    let log = diagnostics(&mut config);
    let (exit, took) = run_watched(&module, &config);
    assert_eq!(exit.kind, ExitKind::Timeout, "{exit:?}");
    assert_eq!(exit.unstopped, vec![0], "{exit:?}");
    assert!(took < Duration::from_millis(2500), "the run waited for the callback: {took:?}");
    let log = log.lock().unwrap();
    assert!(log.iter().any(|(tid, m)| *tid == 0 && m.contains("had not stopped")), "{log:?}");
}

/// With the engine's epoch interruption on, busy threads stop on cancel as well.
#[test]
fn epoch_interruption_stops_busy_code_too() {
    let engine = wasithreads::Engine::new(&EngineConfig { epoch_interruption: true, ..Default::default() }).unwrap();
    let module = load(
        &engine,
        &crate::common::guest(&format!("{} (loop $l (br $l))", crate::common::spawn_all(&[crate::common::SPIN]))),
    );
    let exit = within(Duration::from_secs(60), move || {
        let run = Run::start(&module, &RunConfig::default()).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        run.cancel();
        run.wait()
    });
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
}

/// Code with no `loop` at all still has interruption points, so cancel stops it: only
/// `loop` can branch backwards, and every function entry that can run long has a point
/// (`module/points.rs` places them only where running long is possible). Each row is a
/// busy guest without loops and how fast cancel must end it.
#[test]
fn code_without_loops_is_stopped_by_cancel() {
    // $f0 calls $f1 twice, ..., $f39 calls the leaf $f40 twice: 2^40 calls, no loop.
    let mut call_tree = String::new();
    for i in 0..40 {
        call_tree.push_str(&format!("(func $f{i} (call $f{n}) (call $f{n}))\n", n = i + 1));
    }
    call_tree.push_str("(func $f40 (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1))))\n");
    let rows: &[(&str, String, Duration)] = &[
        (
            "an endless return_call chain",
            "(func $f (return_call $f)) (func (export \"_start\") (call $f))".to_string(),
            Duration::from_secs(1),
        ),
        (
            "mutual tail recursion through return_call_indirect",
            r#"(type $v (func)) (table funcref (elem $a $b))
               (func $a (return_call_indirect (type $v) (i32.const 1)))
               (func $b (return_call_indirect (type $v) (i32.const 0)))
               (func (export "_start") (call $a))"#
                .to_string(),
            Duration::from_secs(1),
        ),
        (
            "a br_table and a tail call for a loop",
            r#"(func $f (param $n i32)
                 (block $x (block $y (br_table $x $y (i32.and (local.get $n) (i32.const 1)))))
                 (return_call $f (i32.add (local.get $n) (i32.const 1))))
               (func (export "_start") (call $f (i32.const 0)))"#
                .to_string(),
            Duration::from_secs(1),
        ),
        (
            "tail calls around a cycle of two functions",
            r#"(memory (export "memory") 1)
               (func $a (param i32) (return_call $b (i32.add (local.get 0) (i32.const 1))))
               (func $b (param i32) (return_call $a (local.get 0)))
               (func (export "_start") (call $a (i32.const 0)))"#
                .to_string(),
            Duration::from_secs(5),
        ),
        (
            "a tail call of itself through a table",
            r#"(memory (export "memory") 1)
               (type $t (func))
               (table 1 funcref) (elem (i32.const 0) $f)
               (func $f (return_call_indirect (type $t) (i32.const 0)))
               (func (export "_start") (call $f))"#
                .to_string(),
            Duration::from_secs(5),
        ),
        (
            "a call tree of 2^40 calls",
            format!(r#"(memory (export "memory") 1) {call_tree} (func (export "_start") (call $f0))"#),
            Duration::from_secs(5),
        ),
    ];
    for (row, body, bound) in rows {
        let wat = format!("(module {body})");
        let (exit, took) = cancel_after(&wat, RunConfig::default(), Duration::from_millis(100));
        assert_eq!(exit.kind, ExitKind::Cancelled, "{row}: {exit:?}");
        assert!(took < *bound, "{row}: cancel took {took:?}");
    }
}

/// Once a run is dropped (`wt_run_free`), none of its callbacks starts again, even for
/// threads that outlived the teardown grace inside a slow output callback: eight threads
/// write through a callback that takes 300 ms, the grace is 50 ms, and the run is
/// cancelled and dropped while they are at it. Their later output and thread-exit
/// callbacks are not made.
#[test]
fn no_callback_runs_after_the_run_is_dropped() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let engine = engine();
    let module = load(&engine, crate::common::WRITERS);
    let dropped = Arc::new(AtomicBool::new(false));
    let (calls, late) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut config = RunConfig::default();
    config.teardown_grace = Duration::from_millis(50);
    let (d, c, l) = (dropped.clone(), calls.clone(), late.clone());
    config.stdout = wasithreads::Output::Callback(Arc::new(move |_, _| {
        if d.load(Ordering::SeqCst) {
            l.fetch_add(1, Ordering::SeqCst);
        }
        c.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
    }));
    let (d, l) = (dropped.clone(), late.clone());
    config.hooks.on_thread_exit = Some(Arc::new(move |_, _| {
        if d.load(Ordering::SeqCst) {
            l.fetch_add(1, Ordering::SeqCst);
        }
    }));
    let (late, unstopped) = within(Duration::from_secs(60), move || {
        let run = Run::start(&module, &config).expect("run starts");
        eventually("the first output callback", || calls.load(Ordering::SeqCst) > 0);
        run.cancel();
        let exit = run.wait();
        drop(run);
        dropped.store(true, Ordering::SeqCst);
        // Time for threads past the grace to make the callbacks they must not.
        std::thread::sleep(Duration::from_millis(1000));
        (late.load(Ordering::SeqCst), exit.unstopped.len())
    });
    assert!(unstopped > 0, "the scenario needs threads that outlive the grace");
    assert_eq!(late, 0, "callbacks after the run was dropped");
}
