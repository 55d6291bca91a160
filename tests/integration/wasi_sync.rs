//! `fd_sync` and `fd_datasync`: the sync runs on a pool thread holding its own
//! reference to the descriptor while the guest thread waits through the run's teardown.
//! Checked here: the errnos (a file syncs, anything else is `badf`), many threads syncing
//! one file at once, a run cancelled while its threads sync in a loop ending with every
//! thread terminated, and no host descriptor left behind either way.

use std::time::{Duration, Instant};

use crate::common::child::isolated;
use crate::common::wasi::*;
use crate::common::*;
use wasithreads::config::Preopen;
use wasithreads::{ExitKind, Run, RunConfig, ThreadExit};

/// `_start` runs `MAIN`; `wasi_thread_start` syncs the file at fd [52] `ROUNDS` times
/// (`fd_sync`, then `fd_datasync`), counting results other than success at [208], then
/// counts itself done at [200]. With `ROUNDS` 0 it syncs forever.
///
/// Memory: 0 the number of records, 52 the fd `path_open` returned, 200 threads done,
/// 208 failed syncs, 1024 the file name, 2048 the report iovec, 4096.. the records.
const TEMPLATE: &str = r#"
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_sync" (func $fd_sync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_datasync" (func $fd_datasync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (export "memory" (memory 0))
  (data (i32.const 1024) "file")
  (func $rec (param $v i32)
    (i32.store (i32.add (i32.const 4096) (i32.mul (i32.load (i32.const 0)) (i32.const 4))) (local.get $v))
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1))))
  (func $report
    (i32.store (i32.const 2048) (i32.const 4096))
    (i32.store (i32.const 2052) (i32.mul (i32.load (i32.const 0)) (i32.const 4)))
    (drop (call $fd_write (i32.const 1) (i32.const 2048) (i32.const 1) (i32.const 2056))))
  (func $fail_unless_ok (param $r i32)
    (if (local.get $r) (then (drop (i32.atomic.rmw.add (i32.const 208) (i32.const 1))))))
  (func $wait_done (param $n i32)
    (local $seen i32)
    (block $done (loop $w
      (local.set $seen (i32.atomic.load (i32.const 200)))
      (br_if $done (i32.ge_u (local.get $seen) (local.get $n)))
      (drop (memory.atomic.wait32 (i32.const 200) (local.get $seen) (i64.const -1)))
      (br $w))))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (local $i i32) (local $fd i32)
    (local.set $fd (i32.load (i32.const 52)))
    (loop $l
      (call $fail_unless_ok (call $fd_sync (local.get $fd)))
      (call $fail_unless_ok (call $fd_datasync (local.get $fd)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.or (i32.eqz (i32.const ROUNDS)) (i32.lt_u (local.get $i) (i32.const ROUNDS)))))
    (drop (i32.atomic.rmw.add (i32.const 200) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 200) (i32.const 1))))
  (func (export "_start")
    (local $i i32)
    ;; "file" under the preopen (fd 3), for writing (rights fd_write)
    (call $rec (call $path_open (i32.const 3) (i32.const 0) (i32.const 1024) (i32.const 4) (i32.const 0)
                                (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 52)))
    MAIN))
"#;

fn guest(rounds: u32, main: &str) -> String {
    TEMPLATE.replace("ROUNDS", &rounds.to_string()).replace("MAIN", main)
}

fn config(name: &str, out: &Capture, exits: &Exits) -> RunConfig {
    let dir = temp_dir(name);
    std::fs::write(dir.join("file"), b"some data").unwrap();
    let mut c = RunConfig::default();
    c.preopens.push(Preopen { host: dir, guest: "/".into(), read_only: false });
    c.stdout = out.output();
    exits.install(&mut c);
    c
}

fn records(out: &Capture) -> Vec<i32> {
    let bytes: Vec<u8> = out.0.lock().unwrap().iter().flat_map(|(_, d)| d.clone()).collect();
    bytes.chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Waits (at most 10 s: a hang guard) until the process has `want` descriptors open: a
/// sync still finishing when the run returned closes its descriptor on its own.
fn settle_fds(want: usize) -> usize {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let now = open_fds();
        if now == want || Instant::now() > give_up {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `fd_sync` and `fd_datasync` succeed on a file (from four threads at once too) and are
/// `badf` on anything else or after close, and no host descriptor is left open. Counts
/// the process's descriptors, so it runs alone in a child process.
#[test]
fn syncs_answer_with_the_right_errnos_from_many_threads_and_leak_no_descriptor() {
    if !isolated("syncs_answer_with_the_right_errnos_from_many_threads_and_leak_no_descriptor") {
        return;
    }
    let engine = engine();
    let main = r#"
        (call $rec (call $fd_sync (i32.load (i32.const 52))))
        (call $rec (call $fd_datasync (i32.load (i32.const 52))))
        (call $rec (call $fd_sync (i32.const 99)))
        (call $rec (call $fd_datasync (i32.const 99)))
        ;; the preopen, a directory
        (call $rec (call $fd_sync (i32.const 3)))
        (call $rec (call $fd_datasync (i32.const 3)))
        ;; stdio
        (call $rec (call $fd_sync (i32.const 1)))
        (call $rec (call $fd_datasync (i32.const 0)))
        ;; four threads sync the file 200 times each, at once
        (loop $s
          (drop (call $spawn (i32.const 0)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $s (i32.lt_u (local.get $i) (i32.const 4))))
        (call $wait_done (i32.const 4))
        (call $rec (i32.load (i32.const 208)))
        (call $rec (call $fd_close (i32.load (i32.const 52))))
        (call $rec (call $fd_sync (i32.load (i32.const 52))))
        (call $report)
        (call $proc_exit (i32.const 5))"#;
    let module = load(&engine, &guest(200, main));
    let (out, exits) = (Capture::default(), Exits::default());
    let c = config("sync-errnos", &out, &exits);
    let before = open_fds();
    let (exit, _) = run_watched(&module, &c);
    assert_eq!((exit.kind, exit.code, exit.tid), (ExitKind::Code, 5, 0), "{exit:?}");
    assert_eq!(
        records(&out),
        vec![SUCCESS, SUCCESS, SUCCESS, BADF, BADF, BADF, BADF, BADF, BADF, 0, SUCCESS, BADF],
        "open, sync, datasync, bad fd x2, directory x2, stdio x2, failed syncs in threads, close, sync after close"
    );
    let spawned: Vec<_> = exits.sorted().into_iter().filter(|(tid, _)| *tid != 0).map(|(_, how)| how).collect();
    assert_eq!(spawned, vec![ThreadExit::Returned; 4]);
    assert_eq!(settle_fds(before), before, "a host descriptor was left open");
}

/// Cancel ends a run whose threads sync in a loop, every thread terminated, with no host
/// descriptor left open (a sync still running on the pool closes its own). Runs alone in a
/// child process, as it counts descriptors.
#[test]
fn cancel_stops_threads_syncing_in_a_loop_and_leaks_no_descriptor() {
    if !isolated("cancel_stops_threads_syncing_in_a_loop_and_leaks_no_descriptor") {
        return;
    }
    let engine = engine();
    let main = r#"
        (loop $s
          (drop (call $spawn (i32.const 0)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $s (i32.lt_u (local.get $i) (i32.const 4))))
        (call $wait_done (i32.const 4))"#;
    let module = load(&engine, &guest(0, main));
    let (out, exits) = (Capture::default(), Exits::default());
    let c = config("sync-cancel", &out, &exits);
    let before = open_fds();
    let exit = within(Duration::from_secs(60), move || {
        let run = Run::start(&module, &c).expect("run starts");
        std::thread::sleep(Duration::from_millis(100));
        run.cancel();
        run.wait()
    });
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
    let all = exits.sorted();
    assert_eq!(all.len(), 5, "{all:?}");
    assert!(all.iter().all(|(_, how)| how.is_terminated()), "{all:?}");
    assert_eq!(settle_fds(before), before, "a host descriptor was left open");
}
