//! The WAT guest of the `fd_*` tests: WASI fd imports, helpers, a report stream; and
//! what the tests read of it.

use wasithreads::config::Preopen;
use wasithreads::RunConfig;

use super::Capture;

/// The records a guest reported in its last write to `cap` (none if it wrote nothing).
pub fn records(cap: &Capture) -> Vec<i32> {
    let chunks = cap.0.lock().unwrap();
    let Some((_, last)) = chunks.last() else { return vec![] };
    last.chunks_exact(4).map(|w| i32::from_le_bytes(w.try_into().unwrap())).collect()
}

/// Little-endian i32 of the first four bytes of `s`, as `i32.load` sees them.
pub fn word(s: &[u8]) -> i32 {
    i32::from_le_bytes(s[..4].try_into().unwrap())
}

/// A config with `dir` preopened as `/sandbox` (fd 3) and the report captured on stderr.
pub fn config_with(dir: &std::path::Path) -> (RunConfig, Capture) {
    let mut c = RunConfig::default();
    c.preopens.push(Preopen { host: dir.to_path_buf(), guest: "/sandbox".into(), read_only: false });
    let report = Capture::default();
    c.stderr = report.output();
    (c, report)
}

/// A guest for the `fd_*` tests (`wasi_fd`, `wasi_direct_io`): its shared memory
/// `MEM`, `DATA` (data segments from 1024 on), `_start` running `BODY` (locals `$i`, `$fd`,
/// `$r`, `$a`, `$b`), `wasi_thread_start` running `THREAD` (params `$tid`, `$arg`; locals
/// `$r`, `$i`, `$iov`).
///
/// Memory: 32 the iovec of the helpers, 48 their count result, 52 the fd `path_open`
/// returned, 96 the offset `fd_seek`/`fd_tell` returned, 128 a stat buffer, 200 the
/// started counter, 300 a word nobody notifies, 1024.. strings, 2048.. per-thread iovecs,
/// 3000.. read buffers, 4096.. the records, 16384.. a large buffer.
pub const TEMPLATE: &str = r#"
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pread" (func $fd_pread (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite" (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_tell" (func $fd_tell (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $fd_renumber (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_sync" (func $fd_sync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_datasync" (func $fd_datasync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_advise" (func $fd_advise (param i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate" (func $fd_allocate (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func $fd_fdstat_set_flags (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_rights" (func $fd_fdstat_set_rights (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fd_filestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size" (func $fd_filestat_set_size (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_times" (func $fd_filestat_set_times (param i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "env" "memory" MEM)
  (export "memory" (memory 0))
  (global $n (mut i32) (i32.const 0))
  DATA

  ;; Appends $v to the records.
  (func $rec (param $v i32)
    (i32.store (i32.add (i32.const 4096) (i32.shl (global.get $n) (i32.const 2))) (local.get $v))
    (global.set $n (i32.add (global.get $n) (i32.const 1))))
  ;; Writes the records to $fd in one fd_write.
  (func $report (param $fd i32)
    (i32.store (i32.const 40) (i32.const 4096))
    (i32.store (i32.const 44) (i32.shl (global.get $n) (i32.const 2)))
    (drop (call $fd_write (local.get $fd) (i32.const 40) (i32.const 1) (i32.const 56))))
  ;; Stores the iovec ($p, $l) at $at.
  (func $set (param $at i32) (param $p i32) (param $l i32)
    (i32.store (local.get $at) (local.get $p))
    (i32.store offset=4 (local.get $at) (local.get $l)))
  (func $iov (param $p i32) (param $l i32) (result i32)
    (i32.store (i32.const 32) (local.get $p))
    (i32.store (i32.const 36) (local.get $l))
    (i32.const 32))
  (func $write (param $fd i32) (param $p i32) (param $l i32) (result i32)
    (call $fd_write (local.get $fd) (call $iov (local.get $p) (local.get $l)) (i32.const 1) (i32.const 48)))
  (func $read (param $fd i32) (param $p i32) (param $l i32) (result i32)
    (call $fd_read (local.get $fd) (call $iov (local.get $p) (local.get $l)) (i32.const 1) (i32.const 48)))
  (func $pread (param $fd i32) (param $p i32) (param $l i32) (param $off i64) (result i32)
    (call $fd_pread (local.get $fd) (call $iov (local.get $p) (local.get $l)) (i32.const 1) (local.get $off) (i32.const 48)))
  (func $pwrite (param $fd i32) (param $p i32) (param $l i32) (param $off i64) (result i32)
    (call $fd_pwrite (local.get $fd) (call $iov (local.get $p) (local.get $l)) (i32.const 1) (local.get $off) (i32.const 48)))
  ;; The count the last read or write returned.
  (func $count (result i32) (i32.load (i32.const 48)))
  (func $open (param $p i32) (param $l i32) (param $oflags i32) (param $rights i64) (param $fdflags i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 0) (local.get $p) (local.get $l) (local.get $oflags)
      (local.get $rights) (local.get $rights) (local.get $fdflags) (i32.const 52)))
  (func $opened (result i32) (i32.load (i32.const 52)))
  (func $seek (param $fd i32) (param $off i64) (param $whence i32) (result i32)
    (call $fd_seek (local.get $fd) (local.get $off) (local.get $whence) (i32.const 96)))
  (func $tell (param $fd i32) (result i32) (call $fd_tell (local.get $fd) (i32.const 96)))
  (func $pos (result i32) (i32.wrap_i64 (i64.load (i32.const 96))))
  ;; Waits until at least $k threads counted themselves in at 200.
  (func $wait_started (param $k i32)
    (block $done (loop $again
      (br_if $done (i32.ge_u (i32.atomic.load (i32.const 200)) (local.get $k)))
      (drop (memory.atomic.wait32 (i32.const 200) (i32.atomic.load (i32.const 200)) (i64.const 1000000)))
      (br $again))))
  (func $wait_forever (drop (memory.atomic.wait32 (i32.const 300) (i32.const 0) (i64.const -1))))
  (func $started
    (drop (i32.atomic.rmw.add (i32.const 200) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 200) (i32.const -1))))

  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (local $r i32) (local $i i32) (local $iov i32)
    THREAD)
  (func (export "_start")
    (local $i i32) (local $fd i32) (local $r i32) (local $a i32) (local $b i32)
    BODY))
"#;
