//! The caps of a run hold against a guest that tries to exceed them: descriptors
//! (`max_fds`, counting every host descriptor a run holds), linear memory (`max_memory`,
//! for the whole run), table elements, threads, argv and environment, copy buffers and
//! path arguments. Each test checks the guest gets an errno or a failed growth, not the
//! host's resources. Tests that count the process's descriptors run in a child process.

use std::time::Duration;

use crate::common::child::isolated;
use crate::common::wasi::*;
use crate::common::*;
use wasithreads::{ExitKind, Run, RunConfig};

/// `max_fds` bounds the host descriptors a run holds, not only its descriptor table: a
/// descriptor closed while another thread still polls it counts until the poll lets it
/// go. The guest opens 24 FIFO read ends, parks a thread polling them forever, closes them
/// and does it again, 10 rounds with `max_fds` 32; unbounded, a guest could keep 1024
/// threads × 512 polled descriptors open and exhaust the host's RLIMIT_NOFILE.
#[test]
fn closed_descriptors_held_by_polls_still_count_against_max_fds() {
    if !isolated("closed_descriptors_held_by_polls_still_count_against_max_fds") {
        return;
    }
    let dir = temp_dir("attack-poll-hoard");
    mkfifo(&dir.join("fifo"));
    let body = format!(
        r#"
  (func $sub (param $r i32) (param $k i32) (result i32)
    (i32.add (i32.add (i32.const 0x10000) (i32.mul (local.get $r) (i32.const 0x1000))) (i32.mul (local.get $k) (i32.const 48))))
  (func (export "wasi_thread_start") (param $tid i32) (param $r i32)
    (call $bump (i32.const 0x300))
    (drop (call $poll (call $sub (local.get $r) (i32.const 0))
                      (i32.add (i32.const 0x40000) (i32.mul (local.get $r) (i32.const 0x1000)))
                      (i32.const 24) (i32.add (i32.const 0x60000) (i32.mul (local.get $r) (i32.const 4))))))
  (func (export "_start")
    (local $r i32) (local $k i32)
    (loop $rounds
      (local.set $k (i32.const 0))
      (loop $opens
        (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x100) (i32.const 4) (i32.const 0)
                             (i64.const {FD_READ}) (i64.const 0) (i32.const 0) (i32.const 0x200))
          (then (call $proc_exit (i32.const 100))))
        (i64.store (call $sub (local.get $r) (local.get $k)) (i64.const 0))
        (i32.store8 offset=8 (call $sub (local.get $r) (local.get $k)) (i32.const 1))
        (i32.store offset=16 (call $sub (local.get $r) (local.get $k)) (i32.load (i32.const 0x200)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br_if $opens (i32.lt_u (local.get $k) (i32.const 24))))
      (if (i32.lt_s (call $spawn (local.get $r)) (i32.const 0)) (then (call $proc_exit (i32.const 101))))
      (call $wait_count (i32.const 0x300) (i32.add (local.get $r) (i32.const 1)))
      (call $sleep (i64.const 30000000))
      (local.set $k (i32.const 0))
      (loop $closes
        (drop (call $fd_close (i32.load offset=16 (call $sub (local.get $r) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br_if $closes (i32.lt_u (local.get $k) (i32.const 24))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $rounds (i32.lt_u (local.get $r) (i32.const 10))))
    (i32.atomic.store (i32.const 0x304) (i32.const 1))
    (call $sleep (i64.const {HOUR_NS})))"#
    );
    let wat = wasi_guest(8, r#"(data (i32.const 0x100) "fifo")"#, &body);
    let engine = engine();
    let module = load(&engine, &wat);
    let mut c = RunConfig::default();
    c.limits.max_fds = 32;
    c.preopens.push(sandbox_preopen(&dir));
    let (fds0, threads0) = settled();
    let run = Run::start(&module, &c).expect("run starts");
    std::thread::sleep(Duration::from_millis(2500));
    let during = open_fds();
    run.cancel();
    let exit = run.wait();
    // Either the guest ran into the limit (its path_open failed: exit 100) or it was
    // cancelled; either way the run never held more host descriptors than its limit.
    assert!(exit.kind == ExitKind::Cancelled || (exit.kind, exit.code) == (ExitKind::Code, 100), "{exit:?}");
    assert!(
        during - fds0 <= c.limits.max_fds as usize + 4,
        "the run held {} host descriptors with max_fds = {} (closed descriptors kept open by polls)",
        during - fds0,
        c.limits.max_fds
    );
    // The guest's descriptors are closed when the run ends; the run's own (its wake
    // eventfd, non-blocking reopenings of piped stdio) when the host frees it.
    drop(run);
    assert_eq!(settled(), (fds0, threads0), "descriptors and threads back to baseline after the run");
}

/// A directory read with `fd_readdir` holds a second host descriptor (its directory
/// stream); it counts against `max_fds` too, so `max_fds` listed directories cannot hold
/// twice as many host descriptors.
#[test]
fn readdir_cursors_count_against_max_fds() {
    if !isolated("readdir_cursors_count_against_max_fds") {
        return;
    }
    let dir = temp_dir("attack-readdir-fds");
    std::fs::write(dir.join("a"), b"x").unwrap();
    let body = format!(
        r#"
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start")
    (local $k i32) (local $fd i32)
    (loop $opens
      (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x100) (i32.const 1) (i32.const {DIRECTORY})
                           (i64.const 16384) (i64.const 0) (i32.const 0) (i32.const 0x200))
        (then (call $proc_exit (i32.const 100))))
      (local.set $fd (i32.load (i32.const 0x200)))
      (if (call $fd_readdir (local.get $fd) (i32.const 0x1000) (i32.const 40) (i64.const 0) (i32.const 0x204))
        (then (call $proc_exit (i32.const 101))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $opens (i32.lt_u (local.get $k) (i32.const 28))))
    (call $sleep (i64.const {HOUR_NS})))"#
    );
    let wat = wasi_guest(2, r#"(data (i32.const 0x100) ".")"#, &body);
    let engine = engine();
    let module = load(&engine, &wat);
    let mut c = RunConfig::default();
    c.limits.max_fds = 32;
    c.preopens.push(sandbox_preopen(&dir));
    let (fds0, _) = settled();
    let run = Run::start(&module, &c).expect("run starts");
    std::thread::sleep(Duration::from_millis(1000));
    let during = open_fds();
    run.cancel();
    let exit = run.wait();
    // The guest runs into the limit (exit 100) now that listed directories count twice.
    assert!(exit.kind == ExitKind::Cancelled || (exit.kind, exit.code) == (ExitKind::Code, 100), "{exit:?}");
    assert!(
        during - fds0 <= c.limits.max_fds as usize + 2,
        "the run held {} host descriptors with max_fds = {}",
        during - fds0,
        c.limits.max_fds
    );
}

/// `path_open` in a loop, from many threads at once, stops at `max_fds` with `mfile`, and
/// every descriptor is closed after the run.
#[test]
fn path_open_loops_from_many_threads_stop_at_max_fds() {
    if !isolated("path_open_loops_from_many_threads_stop_at_max_fds") {
        return;
    }
    let dir = temp_dir("attack-open-loop");
    std::fs::write(dir.join("f"), b"x").unwrap();
    let body = format!(
        r#"
  (func $open_all (param $slot i32)
    (local $e i32)
    (loop $l
      (local.set $e (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x100) (i32.const 1) (i32.const 0)
                                     (i64.const {FD_READ}) (i64.const 0) (i32.const 0) (local.get $slot)))
      (br_if $l (i32.eqz (local.get $e))))
    (if (i32.ne (local.get $e) (i32.const 33)) (then (call $proc_exit (local.get $e)))))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $open_all (i32.add (i32.const 0x200) (i32.mul (local.get $tid) (i32.const 4))))
    (call $bump (i32.const 0x300)))
  (func (export "_start")
    (local $k i32)
    (loop $s
      (drop (call $spawn (i32.const 0)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $k) (i32.const 8))))
    (call $open_all (i32.const 0x200))
    (call $wait_count (i32.const 0x300) (i32.const 8))
    (call $proc_exit (i32.const 0)))"#
    );
    let wat = wasi_guest(2, r#"(data (i32.const 0x100) "f")"#, &body);
    let engine = engine();
    let module = load(&engine, &wat);
    let mut c = RunConfig::default();
    c.limits.max_fds = 64;
    c.preopens.push(sandbox_preopen(&dir));
    let (fds0, threads0) = settled();
    let (exit, _) = run_watched(&module, &c);
    // WASI errno `mfile` is 33.
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
    assert_eq!(settled(), (fds0, threads0));
}

/// `max_memory` stops `memory.grow` of a shared and of an unshared memory at the cap
/// (without it, at the module's own maximum), and a cap below the module's minimum is
/// refused at start with the reason.
#[test]
fn memory_cap_stops_growth_of_shared_and_unshared_memory() {
    let e = engine();
    // Grow one page at a time until refused; exit with the final size in pages.
    let grow = |mem: &str| {
        format!(
            r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        {mem}
        (func (export "_start")
          (block $full (loop $more
            (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
            (br $more)))
          (call $exit (memory.size))))"#
        )
    };
    let shared = load(&e, &grow(r#"(import "env" "memory" (memory 1 200 shared))"#));
    let unshared = load(&e, &grow(r#"(memory (export "memory") 1 200)"#));
    for m in [&shared, &unshared] {
        let (exit, _) = run_watched(m, &RunConfig::default());
        assert_eq!(exit.code, 200, "the module's own maximum");
        let mut c = RunConfig::default();
        c.limits.max_memory = Some(10 * 65536 + 100);
        let (exit, _) = run_watched(m, &c);
        assert_eq!(exit.code, 10, "capped at 10 pages");
    }
    let mut c = RunConfig::default();
    c.limits.max_memory = Some(100);
    let err = Run::start(&shared, &c).err().expect("cap below the minimum");
    assert!(format!("{err:#}").contains("below the module's minimum"), "{err:#}");
}

/// `max_memory` caps all linear memory of a run together (the shared memory and every
/// thread's private memories), not each memory on its own: otherwise a module with 20
/// private memories would get 20 × `max_memory`, and each spawned thread its own copies.
#[test]
fn max_memory_caps_the_run_not_each_memory() {
    let mut mems = String::new();
    let mut grow = String::new();
    for k in 0..20 {
        mems.push_str(&format!("(memory $m{k} 1 64)\n"));
        grow.push_str(&format!(
            "(drop (memory.grow $m{k} (i32.const 15))) (local.set $pages (i32.add (local.get $pages) (memory.size $m{k})))\n"
        ));
    }
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  {mems}
  (func (export "_start") (local $pages i32) {grow} (call $proc_exit (local.get $pages))))"#
    );
    let engine = engine();
    let module = load(&engine, &wat);
    let mut c = RunConfig::default();
    c.limits.max_memory = Some(16 * 65536);
    // 20 memories of 1 page do not even fit a 16-page budget: instantiation fails.
    let (exit, _) = run_watched(&module, &c);
    assert_eq!(exit.kind, ExitKind::Trap, "{exit:?}");
    assert!(exit.message.as_deref().unwrap_or("").contains("memory limits"), "{exit:?}");
    // With 32 pages they fit, and growth stops at the budget.
    c.limits.max_memory = Some(32 * 65536);
    let (exit, _) = run_watched(&module, &c);
    assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
    assert!(
        exit.code <= 32,
        "with max_memory = 2 MiB (32 pages) the guest holds {} pages ({} MiB) of linear memory",
        exit.code,
        exit.code / 16
    );
}

/// Table growth is capped by a run-wide element budget: 100 million elements are refused
/// under the default budget while modest growth works, and `max_table_elements` lowers it.
#[test]
fn table_growth_is_capped_per_run() {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (table $t 1 funcref)
      (func (export "_start")
        ;; 100 million elements: refused (-1) under the default run-wide budget.
        (if (i32.ne (table.grow $t (ref.null func) (i32.const 100000000)) (i32.const -1))
          (then (call $exit (i32.const 1))))
        ;; A modest growth still works.
        (if (i32.ne (table.grow $t (ref.null func) (i32.const 1000)) (i32.const 1))
          (then (call $exit (i32.const 2))))
        (call $exit (table.size $t))))"#;
    let engine = engine();
    let module = load(&engine, wat);
    let mut config = RunConfig::default();
    config.limits.max_memory = Some(1 << 20);
    let (exit, _) = run_watched(&module, &config);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 1001), "{exit:?}");
    config.limits.max_table_elements = 500;
    let (exit, _) = run_watched(&module, &config);
    assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
    assert_eq!(exit.code, 2, "1000 more elements do not fit a budget of 500: {exit:?}");
}

/// `table.grow` from many threads at once stops at the run-wide element budget.
#[test]
fn table_grow_from_many_threads_stops_at_the_run_budget() {
    let wat = r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "env" "memory" (memory 1 1 shared))
  (table $t 0 funcref)
  (func $grow_all
    (loop $l
      (if (i32.ne (table.grow $t (ref.null func) (i32.const 100000)) (i32.const -1))
        (then (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1))) (br $l)))))
  (func (export "wasi_thread_start") (param i32 i32)
    (call $grow_all)
    (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
    ;; stay alive so the elements stay taken
    (drop (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const -1))))
  (func (export "_start")
    (drop (call $spawn (i32.const 0))) (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 0))) (drop (call $spawn (i32.const 0)))
    (call $grow_all)
    (loop $w (br_if $w (i32.lt_u (i32.atomic.load (i32.const 4)) (i32.const 4))))
    (call $proc_exit (i32.atomic.load (i32.const 0)))))"#;
    let engine = engine();
    let module = load(&engine, wat);
    let mut c = RunConfig::default();
    c.limits.max_table_elements = 2_000_000;
    let (exit, _) = run_watched(&module, &c);
    assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
    assert_eq!(exit.code, 20, "2M elements in steps of 100k, across 5 threads");
}

/// A guest spawning threads until refused gets the default 1024, then a negative result,
/// and exits cleanly; every one of its threads is stopped and reported.
#[test]
fn thread_flood_is_refused_and_the_guest_exits_cleanly() {
    let e = engine();
    // Spawn (threads that wait forever) until refused; exit 1 if at least 1024 succeeded
    // and the refusal was a negative number.
    let m = load(
        &e,
        &guest(
            "(block $refused (loop $more
            (local.set $r (call $spawn (i32.const 1)))
            (br_if $refused (i32.lt_s (local.get $r) (i32.const 0)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $more)))
         (call $proc_exit (i32.eq (local.get $i) (i32.const 1024)))",
        ),
    );
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 1), "1024 spawns then a refusal");
    assert_eq!(exits.sorted().len(), 1025, "every thread was stopped and reported");
}

/// A 4 MiB argument and 10 000 environment variables reach the guest whole, with the
/// sizes WASI reports: large but legitimate inputs are not truncated or refused.
#[test]
fn huge_argv_and_environment() {
    let e = engine();
    // Exit code: 1 if argc and the argv/environ buffer sizes are what the host passed.
    let m = load(
        &e,
        r#"(module
        (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "environ_sizes_get" (func $envs (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 2000)
        (global $argc (mut i32) (i32.const 0))
        (func (export "_start")
          (drop (call $args (i32.const 0) (i32.const 4)))
          (drop (call $envs (i32.const 8) (i32.const 12)))
          ;; the environ strings really arrive (into memory at 1 MiB)
          (drop (call $env_get (i32.const 65536) (i32.const 1048576)))
          (call $exit (i32.and (i32.and
            (i32.eq (i32.load (i32.const 0)) (i32.const 2))
            (i32.eq (i32.load (i32.const 4)) (i32.const 4194310)))
            (i32.and
              (i32.eq (i32.load (i32.const 8)) (i32.const 10000))
              (i32.eq (i32.load (i32.const 12)) (i32.const 78890)))))))"#,
    );
    let mut c = RunConfig::default();
    c.args = vec!["wasm".into(), "x".repeat(4 << 20)]; // "wasm\0" + 4 MiB + NUL
    c.env = (0..10000).map(|i| (format!("K{i}"), "v".into())).collect();
    let (exit, _) = run_watched(&m, &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 1), "{exit:?}");
}

/// Oversized I/O requests are bounded rather than allocated: one 20 MiB `fd_write` is a
/// short write of 16 MiB, 2000 iovecs are `inval`, and a poll of 100 000 subscriptions
/// fails without a hang.
#[test]
fn oversized_io_requests_are_bounded() {
    let e = engine();
    // fd_write of one 20 MiB buffer: a short write of 16 MiB. 2000 iovecs: EINVAL (28).
    // poll_oneoff with 100 000 subscriptions: an error, no hang, no huge allocation.
    let m = load(
        &e,
        r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 400)
        (func (export "_start")
          (i32.store (i32.const 0) (i32.const 1024))
          (i32.store (i32.const 4) (i32.const 20971520))
          (if (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)) (then (call $exit (i32.const 90))))
          (if (i32.ne (i32.load (i32.const 16)) (i32.const 16777216)) (then (call $exit (i32.const 91))))
          (if (i32.ne (call $write (i32.const 1) (i32.const 0) (i32.const 2000) (i32.const 16)) (i32.const 28))
            (then (call $exit (i32.const 92))))
          (if (i32.eqz (call $poll (i32.const 0) (i32.const 8192) (i32.const 100000) (i32.const 16)))
            (then (call $exit (i32.const 93))))
          (call $exit (i32.const 0))))"#,
    );
    let mut c = RunConfig::default();
    c.stdout = wasithreads::io::Output::Null;
    let (exit, _) = run_watched(&m, &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
}

/// Peak resident memory of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// A path argument longer than PATH_MAX is refused (`nametoolong`) before it is copied
/// out of the guest's memory: eight threads passing a 120 MiB "path" must not take
/// gigabytes of host memory (with 1024 threads and a 4 GiB memory, terabytes), which the
/// copy budget of iovecs would not bound.
#[test]
fn long_paths_are_refused_before_being_copied_into_host_memory() {
    if !isolated("long_paths_are_refused_before_being_copied_into_host_memory") {
        return;
    }
    const LEN: u32 = 120 << 20;
    let dir = temp_dir("attack-long-path");
    let body = format!(
        r#"
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $wait_count (i32.const 0x304) (i32.const 1))
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x100000) (i32.const {LEN}) (i32.const 0)
                           (i64.const {FD_READ}) (i64.const 0) (i32.const 0) (i32.const 0x200)))
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x100000) (i32.const {LEN}) (i32.const 0)
                           (i64.const {FD_READ}) (i64.const 0) (i32.const 0) (i32.const 0x200)))
    (call $bump (i32.const 0x300)))
  (func (export "_start")
    (local $k i32)
    (memory.fill (i32.const 0x100000) (i32.const 97) (i32.const {LEN}))
    (loop $s
      (drop (call $spawn (i32.const 0)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $k) (i32.const 8))))
    (call $bump (i32.const 0x304))
    (call $wait_count (i32.const 0x300) (i32.const 8))
    (call $proc_exit (i32.const 0)))"#
    );
    let wat = wasi_guest(2048, "", &body);
    let engine = engine();
    let module = load(&engine, &wat);
    let mut c = RunConfig::default();
    c.preopens.push(sandbox_preopen(&dir));
    let before = peak_rss();
    let (exit, _) = run_watched(&module, &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
    let grown = peak_rss().saturating_sub(before);
    // The guest's own memory is 128 MiB; the copy budget 64 MiB and a bit.
    assert!(
        grown < (128 + 192) << 20,
        "peak host memory grew by {} MiB for 8 threads passing a 120 MiB path",
        grown >> 20
    );
}
