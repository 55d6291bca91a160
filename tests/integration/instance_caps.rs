//! What a run's instances take besides linear memory and tables, and what a guest writes
//! under its preopens: `max_memories` (private memories, a 0-page one included, each
//! reserving 4 GiB of address space), `max_instance_bytes` (the host memory of each
//! thread's instance: globals, function references, imports), `max_write_bytes` and
//! `max_files_created`. (The resident memory and address space these keep a hostile
//! guest to are measured in `tests/process`.)

use std::sync::{Arc, Mutex};

use crate::common::fd_guest::{config_with, records};
use crate::common::wasi::*;
use crate::common::*;
use wasithreads::{ErrorKind, ExitKind, Run, RunConfig};

/// WASI errno `dquot`.
const DQUOT: i32 = 19;

/// A module that imports a shared memory and defines `extra` (WAT) per instance; its
/// `_start` spawns threads (each waits forever) until a spawn fails or 400 did, stores
/// how many at 4, then waits forever.
fn spawn_until_refused(extra: &str) -> String {
    format!(
        r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  {extra}
  (func (export "wasi_thread_start") (param i32 i32)
    (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1))))
  (func (export "_start") (local $n i32)
    (block $done (loop $more
      (br_if $done (i32.lt_s (call $spawn (i32.const 0)) (i32.const 0)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $n) (i32.const 400)))))
    (i32.atomic.store (i32.const 4) (i32.add (local.get $n) (i32.const 1000)))
    (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))))"#
    )
}

/// Every diagnostic of a run: (tid, message).
type Diagnostics = Arc<Mutex<Vec<(i32, String)>>>;

/// Starts `wat` in the background with `config` and waits until its `_start` stopped
/// spawning: the run, the count of threads started (the main one included; a spawned
/// thread counts itself in when it starts, which may be after the refusal: read it once
/// the run is joined) and the diagnostics.
fn run_until_refused(wat: &str, mut config: RunConfig) -> (Run, Arc<Mutex<usize>>, Diagnostics) {
    let log = diagnostics(&mut config);
    let started = Arc::new(Mutex::new(0usize));
    let s = started.clone();
    config.hooks.on_thread_start = Some(Arc::new(move |_| *s.lock().unwrap() += 1));
    let e = engine();
    let m = load(&e, wat);
    let run = Run::start_background(&m, &config).expect("the run starts");
    eventually("the guest to stop spawning", || {
        log.lock().unwrap().iter().any(|(_, m)| m.contains("thread-spawn failed"))
    });
    (run, started, log)
}

/// Row 9 of issue 20: each thread instantiating 98 private memories of 0 pages took the
/// host's whole address space (325 threads, 127 TiB, 65 000 mappings) until the host's
/// own `malloc` and `pthread_create` failed. Now the run's private memories are capped
/// (1024 by default): 10 instances of 98 (980) fit, the 11th is refused with a
/// diagnostic, and meanwhile the host allocates, starts threads and starts another run.
#[test]
fn zero_page_memories_count_against_the_run_and_the_host_stays_alive() {
    let mems = "(memory 0 0)\n".repeat(98);
    let (run, started, log) = run_until_refused(&spawn_until_refused(&mems), RunConfig::default());
    let why = log.lock().unwrap().iter().find(|(_, m)| m.contains("thread-spawn failed")).cloned().unwrap();
    assert!(why.1.contains("limit of 1024 private memories"), "{why:?}");
    // The host's own allocations and threads, and a second run, while the guest holds its
    // memories.
    // SAFETY: plain malloc/free of a block nobody else sees.
    unsafe {
        let p = libc::malloc(64 << 20);
        assert!(!p.is_null(), "the host's malloc(64 MiB) failed");
        libc::free(p);
    }
    assert_eq!(std::thread::spawn(|| 7).join().unwrap(), 7);
    let e = engine();
    let other = load(&e, &guest("(call $proc_exit (i32.const 5))"));
    let (exit, _) = run_watched(&other, &RunConfig::default());
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 5), "{exit:?}");
    run.cancel();
    let exit = run.wait();
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
    let started = *started.lock().unwrap();
    assert_eq!(started, 10, "1024 memories hold 10 instances of 98: {:?}", log.lock().unwrap());

    // The cap is the host's: 0 memories refuses the run itself.
    let mut c = RunConfig::default();
    c.limits.max_memories = 97;
    let err = Run::start(&load(&e, &spawn_until_refused(&mems)), &c).err().expect("98 memories > 97");
    assert_eq!(ErrorKind::of(&err), ErrorKind::Limit, "{err:#}");
    assert!(format!("{err:#}").contains("the main thread cannot start"), "{err:#}");
}

/// Row 8 of issue 20: a module with many globals took ~27 MB of host memory per thread,
/// counted against nothing. Each instance is now counted against the run's
/// `max_instance_bytes`: with 20 000 globals (about 640 KB per instance) and a 2 MiB cap,
/// the main thread and 2 more fit, the next spawn is refused with a diagnostic; a cap
/// below one instance refuses the run.
#[test]
fn instances_with_many_globals_count_against_the_run() {
    let globals = "(global (mut i64) (i64.const 0))\n".repeat(20_000);
    let mut c = RunConfig::default();
    c.limits.max_instance_bytes = 2 << 20;
    let (run, started, log) = run_until_refused(&spawn_until_refused(&globals), c.clone());
    let why = log.lock().unwrap().iter().find(|(_, m)| m.contains("thread-spawn failed")).cloned().unwrap();
    assert!(why.1.contains("instance memory limit"), "{why:?}");
    run.cancel();
    assert_eq!(run.wait().kind, ExitKind::Cancelled);
    assert_eq!(*started.lock().unwrap(), 3, "{:?}", log.lock().unwrap());

    c.limits.max_instance_bytes = 100_000;
    let e = engine();
    let err = Run::start(&load(&e, &spawn_until_refused(&globals)), &c).err().expect("640 KB > 100 KB");
    assert_eq!(ErrorKind::of(&err), ErrorKind::Limit, "{err:#}");
    assert!(format!("{err:#}").contains("bytes of host memory"), "{err:#}");
    // A small module is far below the default.
    let (exit, _) = run_watched(&load(&e, &guest("(call $proc_exit (i32.const 0))")), &RunConfig::default());
    assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
}

/// Item 4 of issue 20: `max_write_bytes` and `max_files_created` cap what a guest writes
/// and creates under its preopens; past them it gets `dquot`, the host nothing.
#[test]
fn writes_and_creations_under_preopens_stop_at_their_caps() {
    let dir = temp_dir("write-quota");
    std::fs::write(dir.join("old.txt"), b"old").unwrap();
    let body = r#"
    ;; a.txt created (1 of 2 files)
    (call $rec (call $open (i32.const 1024) (i32.const 5) (i32.const 1) (i64.const 0x1fffffff) (i32.const 0)))
    (local.set $fd (call $opened))
    ;; 6 bytes, then 4 of 6 (10 in all), then none
    (call $rec (call $write (local.get $fd) (i32.const 1100) (i32.const 6)))
    (call $rec (call $count))
    (call $rec (call $write (local.get $fd) (i32.const 1100) (i32.const 6)))
    (call $rec (call $count))
    (call $rec (call $write (local.get $fd) (i32.const 1100) (i32.const 1)))
    (call $rec (call $pwrite (local.get $fd) (i32.const 1100) (i32.const 1) (i64.const 0)))
    ;; old.txt exists: opened with creat, not counted
    (call $rec (call $open (i32.const 1040) (i32.const 7) (i32.const 1) (i64.const 0x1fffffff) (i32.const 0)))
    ;; b.txt created (2 of 2), c.txt refused, a.txt exists (excl: exist)
    (call $rec (call $open (i32.const 1060) (i32.const 5) (i32.const 1) (i64.const 0x1fffffff) (i32.const 0)))
    (call $rec (call $open (i32.const 1080) (i32.const 5) (i32.const 1) (i64.const 0x1fffffff) (i32.const 0)))
    (call $rec (call $open (i32.const 1024) (i32.const 5) (i32.const 5) (i64.const 0x1fffffff) (i32.const 0)))
    ;; old.txt without creat still opens
    (call $rec (call $open (i32.const 1040) (i32.const 7) (i32.const 0) (i64.const 0x1fffffff) (i32.const 0)))
    (call $report (i32.const 2))
    (call $proc_exit (i32.const 0))"#;
    let data = r#"(data (i32.const 1024) "a.txt") (data (i32.const 1040) "old.txt") (data (i32.const 1060) "b.txt")
      (data (i32.const 1080) "c.txt") (data (i32.const 1100) "123456")"#;
    let wat = crate::common::fd_guest::TEMPLATE
        .replace("MEM", "(memory 4 4 shared)")
        .replace("DATA", data)
        .replace("BODY", body)
        .replace("THREAD", "");
    let (mut c, report) = config_with(&dir);
    c.limits.max_write_bytes = Some(10);
    c.limits.max_files_created = Some(2);
    let e = engine();
    let (exit, _) = run_watched(&load(&e, &wat), &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
    assert_eq!(
        records(&report),
        [SUCCESS, SUCCESS, 6, SUCCESS, 4, DQUOT, DQUOT, SUCCESS, SUCCESS, DQUOT, EXIST, SUCCESS],
        "open, write 6, write 4 of 6, write and pwrite past the cap, open old, create b, c refused, a excl, open old"
    );
    assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"1234561234");
    assert!(!dir.join("c.txt").exists());
    // Without caps (the default) the same guest writes and creates all.
    let (c, report) = config_with(&dir);
    std::fs::remove_file(dir.join("a.txt")).unwrap();
    std::fs::remove_file(dir.join("b.txt")).unwrap();
    let (exit, _) = run_watched(&load(&e, &wat), &c);
    assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
    assert_eq!(
        records(&report),
        [SUCCESS, SUCCESS, 6, SUCCESS, 6, SUCCESS, SUCCESS, SUCCESS, SUCCESS, SUCCESS, EXIST, SUCCESS]
    );
}
