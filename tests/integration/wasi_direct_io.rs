//! Direct regular-file I/O on shared memory: `fd_read`, `fd_pread`, `fd_write` and
//! `fd_pwrite` of regular files hand host `iovec`s pointing into the shared memory to
//! `readv`/`preadv`/`writev`/`pwritev` (`src/wasi/direct.rs`). What traps and what does
//! not, offsets and modes, array sizes and overlaps, growth and truncation races, and
//! threads sharing one cursor.
//!
//! Reference semantics: the Wasmtime 46 CLI run with `-W threads=y,shared-memory=y -S
//! threads=y`, which uses `wasi-common`'s preview 1 (not `wasmtime-wasi`'s): for a shared
//! memory a read moves only the *first* iovec (at most 64 KiB) through a copy buffer and
//! checks the bounds of the bytes actually read only; a write copies every ciovec first
//! (each one bounds-checked, empty ones too: any bad one traps before anything is
//! written). The expected values below marked "w46" were taken from that CLI.
//!
//! Each guest records results as i32s and reports them in one `fd_write` to stderr (as in
//! the `wasi_fd` tests). Cases that could crash the host, or that count its descriptors,
//! run in a child process.

use std::time::{Duration, Instant};

use crate::common::child::{in_child, is_child, isolated};
use crate::common::fd_guest::{config_with, records, word};
use crate::common::wasi::*;
use crate::common::*;
use wasithreads::config::Preopen;
use wasithreads::{ExitKind, Run, RunConfig};

/// 4 pages (the memory ends at 0x40000).
const MEM4: &str = "(memory 4 4 shared)";

fn wat_mem(mem: &str, data: &str, body: &str, thread: &str) -> String {
    crate::common::fd_guest::TEMPLATE
        .replace("MEM", mem)
        .replace("DATA", data)
        .replace("BODY", body)
        .replace("THREAD", thread)
}

fn wat(data: &str, body: &str) -> String {
    wat_mem(MEM4, data, body, "")
}

/// `f.txt` at 1024 (use with `OPEN_F`).
const DATA_F: &str = r#"(data (i32.const 1024) "f.txt") (data (i32.const 1040) "XYZW")"#;

/// Opens `f.txt` read-write (records the errno) into `$fd`.
const OPEN_F: &str = r#"
    (call $rec (call $open (i32.const 1024) (i32.const 5) (i32.const 0) (i64.const 0x1fffffff) (i32.const 0)))
    (local.set $fd (call $opened))"#;

/// Runs `wat` with `dir` preopened: the exit kind and the last report.
fn run_in(dir: &std::path::Path, wat: &str) -> (ExitKind, Vec<i32>) {
    let (c, report) = config_with(dir);
    let e = engine();
    let m = load(&e, wat);
    let (exit, _) = run_watched(&m, &c);
    (exit.kind, records(&report))
}

/// A fresh directory holding `f.txt` = `content`.
fn dir_with(name: &str, content: &[u8]) -> std::path::PathBuf {
    let dir = temp_dir(name);
    std::fs::write(dir.join("f.txt"), content).unwrap();
    dir
}

/// A read buffer that runs past the end of memory does not trap when the file has fewer
/// bytes than fit before the end, as in Wasmtime 46 (w46: `fd_pread`/`fd_read` of an
/// 8-byte file into (0x3fff0, 100) of a 4-page memory return 8): only the bytes actually
/// read are bounds-checked. (`a_buffer_outside_memory_traps_as_in_wasmtime` in `wasi_fd`
/// reads 10 bytes into 0x3fffc: past the end either way.)
///
/// Expected: success, 8 bytes, at the cursor and at an offset.
#[test]
fn a_read_buffer_running_past_memory_but_filled_inside_it_does_not_trap() {
    let dir = dir_with("direct-past-end", b"abcdefgh");
    let body = format!(
        r#"{OPEN_F}
        (call $set (i32.const 2048) (i32.const 0x3fff0) (i32.const 100))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const 0) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (call $fd_read (local.get $fd) (i32.const 2048) (i32.const 1) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (i32.load (i32.const 0x3fff4)))
        (call $report (i32.const 2))"#
    );
    let (kind, recs) = run_in(&dir, &wat(DATA_F, &body));
    assert_eq!((kind, recs), (ExitKind::Code, vec![SUCCESS, SUCCESS, 8, SUCCESS, 8, word(b"efgh")]));
}

/// A read at end of file moves nothing, so its buffer is never dereferenced: w46
/// `fd_pread` at offset 100 of an 8-byte file into (0xfffffff0, 100) returns 0 with
/// success, and so does this library.
#[test]
fn a_read_at_end_of_file_into_a_wild_buffer_returns_zero() {
    let dir = dir_with("direct-eof-wild", b"abcdefgh");
    let body = format!(
        r#"{OPEN_F}
        (call $set (i32.const 2048) (i32.const 0xfffffff0) (i32.const 100))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const 100) (i32.const 48)))
        (call $rec (call $count))
        (call $report (i32.const 2))"#
    );
    let (kind, recs) = run_in(&dir, &wat(DATA_F, &body));
    assert_eq!((kind, recs), (ExitKind::Code, vec![SUCCESS, SUCCESS, 0]));
}

/// An empty read buffer is never dereferenced, whatever its pointer (POSIX `readv`,
/// Wasmtime 46 and Wasmtime 48's preview 1 all skip it): an empty buffer with a wild
/// pointer before a good one does not trap the read. (w46 reads only the first iovec: 0
/// bytes; this library fills every buffer: 4. Either count is fine, a trap is not.)
#[test]
fn an_empty_wild_buffer_before_a_good_one_does_not_trap_a_read() {
    let dir = dir_with("direct-empty-wild", b"abcdefgh");
    let body = format!(
        r#"{OPEN_F}
        (call $set (i32.const 2048) (i32.const 0xfffffff0) (i32.const 0))
        (call $set (i32.const 2056) (i32.const 3000) (i32.const 4))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 2) (i64.const 0) (i32.const 48)))
        (call $rec (call $fd_read (local.get $fd) (i32.const 2048) (i32.const 2) (i32.const 48)))
        (call $report (i32.const 2))"#
    );
    let (kind, recs) = run_in(&dir, &wat(DATA_F, &body));
    assert_eq!((kind, recs), (ExitKind::Code, vec![SUCCESS, SUCCESS, SUCCESS]));
}

/// A write whose array has a bad buffer after good ones traps before anything is
/// written, as in the Wasmtime 46 CLI (wasi-common copies and bounds-checks every ciovec,
/// empty ones too: w46 `fd_pwrite` of [(1024,3), (0x3fff0,100)] and of [(1024,3),
/// (0xfffffff0,0)] trap, the file unchanged). Wasmtime 48's preview 1 (first non-empty
/// buffer only) is not what runs threaded modules there, so it is not the reference.
///
/// Expected: a trap and the file unchanged, for both arrays.
#[test]
fn a_write_with_a_bad_buffer_after_good_ones_traps_and_writes_nothing() {
    for (addr, len) in [(0x3fff0u32, 100u32), (0xfffffff0, 0)] {
        let dir = dir_with("direct-write-bad-later", b"abcdefgh");
        let body = format!(
            r#"{OPEN_F}
            (call $set (i32.const 2048) (i32.const 1040) (i32.const 3))
            (call $set (i32.const 2056) (i32.const {addr}) (i32.const {len}))
            (call $report (i32.const 2))
            (call $rec (call $fd_pwrite (local.get $fd) (i32.const 2048) (i32.const 2) (i64.const 20) (i32.const 48)))
            (call $rec (call $count))
            (call $report (i32.const 2))"#
        );
        let (kind, _) = run_in(&dir, &wat(DATA_F, &body));
        let file = std::fs::read(dir.join("f.txt")).unwrap();
        assert_eq!((kind, file.as_slice()), (ExitKind::Trap, &b"abcdefgh"[..]), "[(1040,3), ({addr:#x},{len})]");
    }
}

/// An empty write buffer with a wild pointer first traps (w46: `Region { start:
/// 4294967280, len: 0 }`), and nothing is written.
#[test]
fn an_empty_wild_buffer_first_in_a_write_traps_as_in_wasmtime_46() {
    let dir = dir_with("direct-write-empty-wild", b"abcdefgh");
    let body = format!(
        r#"{OPEN_F}
        (call $set (i32.const 2048) (i32.const 0xfffffff0) (i32.const 0))
        (call $set (i32.const 2056) (i32.const 1040) (i32.const 3))
        (drop (call $fd_write (local.get $fd) (i32.const 2048) (i32.const 2) (i32.const 48)))"#
    );
    let (kind, _) = run_in(&dir, &wat(DATA_F, &body));
    assert_eq!(kind, ExitKind::Trap);
    assert_eq!(std::fs::read(dir.join("f.txt")).unwrap(), b"abcdefgh");
}

/// Buffers ending exactly at the end of memory work both ways; one byte past it, or
/// wrapping past 4 GiB (0xfffffff0 + 0x20, which wraps to 0x10 in u32), trap before
/// anything moves (w46 traps on the same reads: 5 bytes at 0x3fffc, 8 at 0xfffffff0).
#[test]
fn buffers_at_the_end_of_memory_and_wrapping_past_4_gib() {
    let dir = dir_with("direct-end", b"abcdefgh");
    let body = format!(
        r#"{OPEN_F}
        (call $set (i32.const 2048) (i32.const 0x3fffc) (i32.const 4))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const 4) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (i32.load (i32.const 0x3fffc)))
        (call $rec (call $fd_pwrite (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const 8) (i32.const 48)))
        (call $rec (call $count))
        (call $report (i32.const 2))"#
    );
    let (kind, recs) = run_in(&dir, &wat(DATA_F, &body));
    assert_eq!((kind, recs), (ExitKind::Code, vec![SUCCESS, SUCCESS, 4, word(b"efgh"), SUCCESS, 4]));
    assert_eq!(std::fs::read(dir.join("f.txt")).unwrap(), b"abcdefghefgh");
    for (call, addr, len) in [
        ("fd_pread", 0x3fffcu32, 5u32),
        ("fd_pwrite", 0x3fffc, 5),
        ("fd_pread", 0xfffffff0, 0x20),
        ("fd_pwrite", 0xfffffff0, 0x20),
        ("fd_read", 0xffffffff, 0xffffffff),
        ("fd_write", 0x10, 0xffffffff),
    ] {
        let dir = dir_with("direct-end-bad", b"abcdefgh");
        let at = if call.starts_with("fd_p") { "(i64.const 0)" } else { "" };
        let body = format!(
            r#"{OPEN_F}
            (call $set (i32.const 2048) (i32.const {addr}) (i32.const {len}))
            (drop (call ${call} (local.get $fd) (i32.const 2048) (i32.const 1) {at} (i32.const 48)))"#
        );
        let (kind, _) = run_in(&dir, &wat(DATA_F, &body));
        assert_eq!(kind, ExitKind::Trap, "{call} ({addr:#x}, {len:#x})");
        assert_eq!(std::fs::read(dir.join("f.txt")).unwrap(), b"abcdefgh", "{call}");
    }
}

/// Positional I/O at offsets that do not fit `off_t` (2^63, 2^64 - 1) or whose end does
/// not (2^63 - 2 with 4 bytes) fails with `inval` and writes nothing (w46: 28 for each).
#[test]
fn positional_io_past_i64_max_is_inval() {
    let dir = dir_with("direct-offsets", b"abcdefgh");
    let mut body = format!("{OPEN_F}\n(call $set (i32.const 2048) (i32.const 1040) (i32.const 4))");
    for off in ["0x8000000000000000", "-1", "0x7ffffffffffffffe"] {
        for call in ["fd_pread", "fd_pwrite"] {
            body += &format!(
                "\n(call $rec (call ${call} (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const {off}) (i32.const 48)))"
            );
        }
    }
    body += "\n(call $report (i32.const 2))";
    let (kind, recs) = run_in(&dir, &wat(DATA_F, &body));
    assert_eq!((kind, recs), (ExitKind::Code, vec![SUCCESS, INVAL, INVAL, INVAL, INVAL, INVAL, INVAL]));
    assert_eq!(std::fs::read(dir.join("f.txt")).unwrap(), b"abcdefgh");
}

/// Append mode, directories, write-only files, reads past end of file: the same records
/// and file as Wasmtime 46 (w46: [0, 0,4, 0,0, 0,4, 0,16, 8,8, 0,8,8, 0, 0,0, 0, 0,0, 0,1000],
/// file `abcdefghXYZWXYZW`): `fd_pwrite` on an append descriptor appends and leaves the
/// cursor; `fd_write` appends and moves it to the end.
#[test]
fn append_directories_write_only_and_end_of_file_match_wasmtime_46() {
    let dir = dir_with("direct-append", b"abcdefgh");
    let body = r#"
        (call $rec (call $open (i32.const 1024) (i32.const 5) (i32.const 0) (i64.const 0x1fffffff) (i32.const 1)))
        (local.set $fd (call $opened))
        (call $set (i32.const 2048) (i32.const 1040) (i32.const 2))
        (call $set (i32.const 2056) (i32.const 1042) (i32.const 2))
        (call $rec (call $fd_pwrite (local.get $fd) (i32.const 2048) (i32.const 2) (i64.const 0) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (call $tell (local.get $fd)))
        (call $rec (call $pos))
        (call $rec (call $fd_write (local.get $fd) (i32.const 2048) (i32.const 2) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (call $tell (local.get $fd)))
        (call $rec (call $pos))
        (call $rec (call $fd_read (i32.const 3) (i32.const 2048) (i32.const 1) (i32.const 48)))
        (call $rec (call $fd_pread (i32.const 3) (i32.const 2048) (i32.const 1) (i64.const 0) (i32.const 48)))
        (call $rec (call $open (i32.const 1024) (i32.const 5) (i32.const 0) (i64.const 64) (i32.const 0)))
        (local.set $fd (call $opened))
        (call $rec (call $fd_read (local.get $fd) (i32.const 2048) (i32.const 1) (i32.const 48)))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const 0) (i32.const 48)))
        (call $rec (call $open (i32.const 1024) (i32.const 5) (i32.const 0) (i64.const 0x1fffffff) (i32.const 0)))
        (local.set $fd (call $opened))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const 1000) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (call $seek (local.get $fd) (i64.const 1000) (i32.const 0)))
        (call $rec (call $fd_read (local.get $fd) (i32.const 2048) (i32.const 1) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (call $tell (local.get $fd)))
        (call $rec (call $pos))
        (call $report (i32.const 2))"#;
    let (kind, recs) = run_in(&dir, &wat(DATA_F, body));
    assert_eq!(
        (kind, recs),
        (ExitKind::Code, vec![0, 0, 4, 0, 0, 0, 4, 0, 16, BADF, BADF, 0, BADF, BADF, 0, 0, 0, 0, 0, 0, 0, 1000])
    );
    assert_eq!(std::fs::read(dir.join("f.txt")).unwrap(), b"abcdefghXYZWXYZW");
}

/// Files under /proc are regular files (S_IFREG, size 0): `readv` on them with two
/// buffers works (the guest gets the start of `/proc/self/status`); /dev/zero is a
/// character device and takes the stream path. A symlink in a preopen to either is
/// refused (absolute target), not followed.
#[test]
fn proc_files_take_the_direct_path_and_devices_the_stream_path() {
    let mut c = RunConfig::default();
    c.preopens.push(Preopen { host: "/proc/self".into(), guest: "/p".into(), read_only: true });
    let links = temp_dir("direct-links");
    std::os::unix::fs::symlink("/dev/zero", links.join("zero")).unwrap();
    std::os::unix::fs::symlink("/proc/self/status", links.join("status")).unwrap();
    c.preopens.push(Preopen { host: links.clone(), guest: "/l".into(), read_only: false });
    c.preopens.push(Preopen { host: "/dev".into(), guest: "/d".into(), read_only: true });
    let report = Capture::default();
    c.stderr = report.output();
    // fd 3 /proc/self, fd 4 the links, fd 5 /dev.
    let body = r#"
        (call $rec (call $path_open (i32.const 3) (i32.const 0) (i32.const 1024) (i32.const 6) (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 52)))
        (local.set $fd (call $opened))
        (call $set (i32.const 2048) (i32.const 3000) (i32.const 3))
        (call $set (i32.const 2056) (i32.const 3003) (i32.const 100))
        (call $rec (call $fd_read (local.get $fd) (i32.const 2048) (i32.const 2) (i32.const 48)))
        (call $rec (i32.gt_u (call $count) (i32.const 5)))
        (call $rec (i32.load (i32.const 3000)))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 2) (i64.const 0) (i32.const 48)))
        (call $rec (i32.load (i32.const 3000)))
        (call $rec (i32.eqz (call $path_open (i32.const 4) (i32.const 1) (i32.const 1040) (i32.const 4) (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 52))))
        (call $rec (i32.eqz (call $path_open (i32.const 4) (i32.const 1) (i32.const 1024) (i32.const 6) (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 52))))
        (call $rec (call $path_open (i32.const 5) (i32.const 0) (i32.const 1040) (i32.const 4) (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 52)))
        (local.set $fd (call $opened))
        (i32.store (i32.const 3000) (i32.const -1))
        (call $rec (call $fd_read (local.get $fd) (i32.const 2048) (i32.const 2) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (i32.load (i32.const 3000)))
        (call $report (i32.const 2))"#;
    let data = r#"(data (i32.const 1024) "status") (data (i32.const 1040) "zero")"#;
    let e = engine();
    let m = load(&e, &wat(data, body));
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
    let recs = records(&report);
    assert_eq!(recs[..7], [SUCCESS, SUCCESS, 1, word(b"Name"), SUCCESS, word(b"Name"), 0], "{recs:?}");
    assert_eq!(recs[7], 0, "the symlink to /proc/self/status is not followed: {recs:?}");
    assert_eq!(recs[8..], [SUCCESS, SUCCESS, 103, 0], "{recs:?}");
}

/// Arrays of 0 entries move nothing; 1024 one-byte buffers (in reverse order in memory)
/// are filled in array order in one call, and written back the same way; 1025 entries
/// are `inval` and move nothing.
#[test]
fn arrays_of_0_1_1024_and_1025_buffers() {
    let content: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 251) as u8).collect();
    let dir = dir_with("direct-arrays", &content);
    // Iovec $i at 8192 + 8 $i -> byte 16384 + 1023 - $i.
    let body = format!(
        r#"{OPEN_F}
        (call $rec (call $fd_pread (local.get $fd) (i32.const 8192) (i32.const 0) (i64.const 0) (i32.const 48)))
        (call $rec (call $count))
        (local.set $i (i32.const 0))
        (loop $l
          (call $set (i32.add (i32.const 8192) (i32.shl (local.get $i) (i32.const 3)))
                     (i32.sub (i32.const 17407) (local.get $i)) (i32.const 1))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 1025))))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 8192) (i32.const 1025) (i64.const 0) (i32.const 48)))
        (call $rec (call $fd_pwrite (local.get $fd) (i32.const 8192) (i32.const 1025) (i64.const 0) (i32.const 48)))
        (call $rec (call $fd_read (local.get $fd) (i32.const 8192) (i32.const 1024) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (call $tell (local.get $fd)))
        (call $rec (call $pos))
        (call $rec (call $fd_pwrite (local.get $fd) (i32.const 8192) (i32.const 1024) (i64.const 2048) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (call $fd_pwrite (local.get $fd) (i32.const 8192) (i32.const 1) (i64.const 4096) (i32.const 48)))
        (call $rec (call $count))
        (call $report (i32.const 2))"#
    );
    let (kind, recs) = run_in(&dir, &wat(DATA_F, &body));
    assert_eq!(
        (kind, recs),
        (
            ExitKind::Code,
            vec![SUCCESS, SUCCESS, 0, INVAL, INVAL, SUCCESS, 1024, SUCCESS, 1024, SUCCESS, 1024, SUCCESS, 1]
        )
    );
    let file = std::fs::read(dir.join("f.txt")).unwrap();
    assert_eq!(file.len(), 4097);
    assert_eq!(file[..2048], content[..]);
    assert_eq!(file[2048..3072], content[..1024], "written back in array order");
    assert_eq!(file[3072..4096], vec![0; 1024][..]);
    assert_eq!(file[4096], content[0]);
}

/// Overlapping read buffers are filled in order (the later one wins where they
/// overlap); a buffer over the iovec array itself is filled without changing what the
/// call reads into (the array was read before the system call), and a buffer over the
/// count result ends holding the count.
#[test]
fn overlapping_buffers_and_buffers_over_the_iovec_array() {
    let dir = dir_with("direct-overlap", b"0123456789ABCDEFGHIJKLMNOPQRSTUV");
    let body = format!(
        r#"{OPEN_F}
        (call $set (i32.const 2048) (i32.const 3000) (i32.const 8))
        (call $set (i32.const 2056) (i32.const 3004) (i32.const 8))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 2) (i64.const 0) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (i32.load (i32.const 3000)))
        (call $rec (i32.load (i32.const 3004)))
        (call $rec (i32.load (i32.const 3008)))
        ;; [(2048, 16) the array itself, (3100, 4)]
        (call $set (i32.const 2048) (i32.const 2048) (i32.const 16))
        (call $set (i32.const 2056) (i32.const 3100) (i32.const 4))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 2) (i64.const 0) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (i32.load (i32.const 2048)))
        (call $rec (i32.load (i32.const 3100)))
        ;; A buffer over the count result (48).
        (call $set (i32.const 2048) (i32.const 40) (i32.const 16))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const 0) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (i32.load (i32.const 40)))
        (call $report (i32.const 2))"#
    );
    let (kind, recs) = run_in(&dir, &wat(DATA_F, &body));
    assert_eq!(
        (kind, recs),
        (
            ExitKind::Code,
            vec![
                SUCCESS,
                SUCCESS,
                16,
                word(b"0123"),
                word(b"89AB"),
                word(b"CDEF"),
                SUCCESS,
                20,
                word(b"0123"),
                word(b"GHIJ"),
                SUCCESS,
                16,
                word(b"0123"),
            ]
        )
    );
}

/// Totals beyond 16 MiB, and sums of lengths beyond 4 GiB (1024 buffers of the whole
/// 100-page memory: 6.7 GB), move 16 MiB in one call, both ways.
#[test]
fn totals_past_16_mib_and_4_gib_move_16_mib() {
    let dir = temp_dir("direct-totals");
    let big: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.join("f.txt"), &big).unwrap();
    let body = format!(
        r#"{OPEN_F}
        (local.set $i (i32.const 0))
        (loop $l
          (call $set (i32.add (i32.const 8192) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0) (i32.const 6553600))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 1024))))
        ;; The reads land on the records too: keep the results in locals.
        (local.set $r (call $fd_pread (local.get $fd) (i32.const 8192) (i32.const 1024) (i64.const 0) (i32.const 48)))
        (local.set $a (call $count))
        (call $set (i32.const 2048) (i32.const 0) (i32.const 6553600))
        (call $set (i32.const 2056) (i32.const 0) (i32.const 6553600))
        (call $set (i32.const 2064) (i32.const 0) (i32.const 6553600))
        (local.set $b (call $fd_pwrite (local.get $fd) (i32.const 2048) (i32.const 3) (i64.const 0) (i32.const 48)))
        (global.set $n (i32.const 0))
        (call $rec (local.get $r))
        (call $rec (local.get $a))
        (call $rec (local.get $b))
        (call $rec (call $count))
        (call $report (i32.const 2))"#
    );
    let (kind, recs) = run_in(&dir, &wat_mem("(memory 100 100 shared)", DATA_F, &body, ""));
    assert_eq!((kind, recs), (ExitKind::Code, vec![SUCCESS, 16 << 20, SUCCESS, 16 << 20]));
}

/// A memory with a maximum of 32276 pages has the readable reserved page at 0x7E150000.
/// Grown to its maximum (ending at 0x7E140000), its last bytes can be read into and
/// written from; a buffer one byte past, one in the inaccessible page between, and one in
/// the reserved page trap, for reads (the kernel would write the page) and writes (it
/// would read it); the host lives.
#[test]
#[ignore = "run by the_reserved_page_is_never_read_into_or_written_from"]
fn child_reserved_page() {
    if !is_child() {
        return;
    }
    for (addr, len, trap) in [
        (0x7e13fff8u32, 8u32, false),
        (0x7e13fff8, 9, true),
        (0x7e140000, 1, true),
        (0x7e150000, 16, true),
        (0x7e150000, 0x10000, true),
        (0x7e13fff8, 0x10008, true),
    ] {
        for call in ["fd_pread", "fd_pwrite"] {
            let dir = dir_with("direct-reserved", b"abcdefghijklmnop");
            let body = format!(
                r#"{OPEN_F}
                (call $rec (memory.grow (i32.const 32272)))
                (call $set (i32.const 2048) (i32.const {addr}) (i32.const {len}))
                (call $rec (call ${call} (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const 0) (i32.const 48)))
                (call $rec (call $count))
                (call $report (i32.const 2))"#
            );
            let (kind, recs) = run_in(&dir, &wat_mem("(memory 4 32276 shared)", DATA_F, &body, ""));
            if trap {
                assert_eq!(kind, ExitKind::Trap, "{call} ({addr:#x}, {len:#x})");
            } else {
                assert_eq!((kind, recs), (ExitKind::Code, vec![SUCCESS, 4, SUCCESS, len as i32]), "{call}");
            }
        }
    }
    println!("SURVIVED");
}

/// The host process survives direct I/O aimed at and around the reserved page (see
/// `child_reserved_page`, run in a child process).
#[test]
fn the_reserved_page_is_never_read_into_or_written_from() {
    let (status, output) = in_child("child_reserved_page");
    assert!(status.success() && output.contains("SURVIVED"), "{status}:\n{output}");
}

/// Reads and writes into the last bytes of memory and just past them, while another
/// thread grows the memory page by page: each call either traps (past the size the call
/// saw) or moves its bytes; the host never faults.
#[test]
#[ignore = "run by growth_racing_direct_io_never_faults_the_host"]
fn child_growth_race() {
    if !is_child() {
        return;
    }
    let thread = r#"
        (call $started)
        (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))"#;
    let body = format!(
        r#"{OPEN_F}
        (drop (call $spawn (i32.const 0)))
        (call $wait_started (i32.const 1))
        (loop $l
          ;; The last 16 bytes of the memory as this thread sees it (valid: memory only
          ;; grows), racing the growth of the next page.
          (local.set $a (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 16)))
          (call $set (i32.const 2048) (local.get $a) (i32.const 16))
          (br_if 1 (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const 0) (i32.const 48)))
          (br_if 1 (call $fd_pwrite (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const 0) (i32.const 48)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 20000))))
        ;; Then one buffer 8 bytes past the end: a trap or, if the memory grew since, a read.
        (local.set $a (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 8)))
        (call $set (i32.const 2048) (local.get $a) (i32.const 16))
        (drop (call $fd_pread (local.get $fd) (i32.const 2048) (i32.const 1) (i64.const 0) (i32.const 48)))"#
    );
    let mut traps = 0;
    for _ in 0..20 {
        let dir = dir_with("direct-grow", b"abcdefghijklmnop");
        let (kind, _) = run_in(&dir, &wat_mem("(memory 1 16000 shared)", DATA_F, &body, thread));
        assert!(matches!(kind, ExitKind::Trap | ExitKind::Code), "{kind:?}");
        traps += usize::from(kind == ExitKind::Trap);
    }
    println!("SURVIVED ({traps} of 20 trapped)");
}

/// The host process survives direct I/O racing memory growth (see `child_growth_race`,
/// run in a child process).
#[test]
fn growth_racing_direct_io_never_faults_the_host() {
    let (status, output) = in_child("child_growth_race");
    assert!(status.success() && output.contains("SURVIVED"), "{status}:\n{output}");
}

/// The host truncates and regrows the file while guest threads read it at offsets past
/// the new end and write it: short reads and no SIGBUS (no mapping is involved); the run
/// ends normally.
#[test]
#[ignore = "run by a_file_truncated_by_the_host_during_reads_is_no_crash"]
fn child_truncate_race() {
    if !is_child() {
        return;
    }
    let dir = dir_with("direct-truncate", &vec![7u8; 1 << 20]);
    let thread = r#"
        (call $started)
        (local.set $iov (i32.add (i32.const 2048) (i32.shl (local.get $tid) (i32.const 4))))
        (call $set (local.get $iov) (i32.const 65536) (i32.const 131072))
        (loop $l
          (drop (call $fd_pread (local.get $arg) (local.get $iov) (i32.const 1) (i64.const 4096) (i32.add (local.get $iov) (i32.const 8))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 30000))))"#;
    let body = format!(
        r#"{OPEN_F}
        (drop (call $spawn (local.get $fd)))
        (drop (call $spawn (local.get $fd)))
        (call $wait_started (i32.const 2))
        (call $set (i32.const 2000) (i32.const 65536) (i32.const 65536))
        (loop $l
          (drop (call $fd_pwrite (local.get $fd) (i32.const 2000) (i32.const 1) (i64.const 0) (i32.const 48)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 30000))))"#
    );
    let (c, _) = config_with(&dir);
    let e = engine();
    let m = load(&e, &wat_mem("(memory 8 8 shared)", DATA_F, &body, thread));
    let run = Run::start_background(&m, &c).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(dir.join("f.txt")).unwrap();
    let t = Instant::now();
    while run.try_wait().is_none() && t.elapsed() < Duration::from_secs(30) {
        f.set_len(0).unwrap();
        f.set_len(1 << 20).unwrap();
    }
    let exit = run.wait();
    assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
    println!("SURVIVED");
}

/// The host process survives a file truncated under direct reads (see
/// `child_truncate_race`, run in a child process).
#[test]
fn a_file_truncated_by_the_host_during_reads_is_no_crash() {
    let (status, output) = in_child("child_truncate_race");
    assert!(status.success() && output.contains("SURVIVED"), "{status}:\n{output}");
}

/// Four threads read one byte at a time at the shared cursor, each into its own buffer,
/// and append what they got to their own region: together they read every byte of the
/// file exactly once (the position lock and the kernel's cursor agree). Four threads
/// `fd_write` 2-buffer arrays at the cursor of one descriptor: no write is lost or torn.
#[test]
fn threads_at_one_cursor_read_each_byte_once_and_lose_no_writes() {
    let content: Vec<u8> = (0..4000u32).map(|i| (i % 250 + 1) as u8).collect();
    let dir = dir_with("direct-cursor", &content);
    std::fs::write(dir.join("g.txt"), b"").unwrap();
    // arg = fd << 8 | mode: mode 0 reads f, mode 1 writes g. Thread $tid region: 16384 + 8192 $tid.
    let thread = r#"
        (local.set $iov (i32.add (i32.const 2048) (i32.shl (local.get $tid) (i32.const 5))))
        (call $started)
        (if (i32.eqz (i32.and (local.get $arg) (i32.const 255)))
          (then
            (block $end (loop $l
              (call $set (local.get $iov) (i32.add (i32.add (i32.const 16384) (i32.shl (local.get $tid) (i32.const 13))) (local.get $i)) (i32.const 1))
              (br_if $end (call $fd_read (i32.shr_u (local.get $arg) (i32.const 8)) (local.get $iov) (i32.const 1) (i32.add (local.get $iov) (i32.const 24))))
              (br_if $end (i32.eqz (i32.load offset=24 (local.get $iov))))
              (drop (i32.atomic.rmw.add (i32.const 208)
                (i32.load8_u (i32.add (i32.add (i32.const 16384) (i32.shl (local.get $tid) (i32.const 13))) (local.get $i)))))
              (drop (i32.atomic.rmw.add (i32.const 212) (i32.const 1)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $l)))
            (i32.store (i32.add (i32.const 1536) (i32.shl (local.get $tid) (i32.const 2))) (local.get $i)))
          (else
            (call $set (local.get $iov) (i32.const 1040) (i32.const 2))
            (call $set (i32.add (local.get $iov) (i32.const 8)) (i32.const 1042) (i32.const 2))
            (loop $l
              (drop (call $fd_write (i32.shr_u (local.get $arg) (i32.const 8)) (local.get $iov) (i32.const 2) (i32.add (local.get $iov) (i32.const 24))))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $l (i32.lt_u (local.get $i) (i32.const 500))))))
        (drop (i32.atomic.rmw.add (i32.const 204) (i32.const 1)))
        (drop (memory.atomic.notify (i32.const 204) (i32.const -1)))"#;
    let body = format!(
        r#"{OPEN_F}
        (drop (call $open (i32.const 1060) (i32.const 5) (i32.const 0) (i64.const 0x1fffffff) (i32.const 0)))
        (local.set $b (call $opened))
        (local.set $i (i32.const 0))
        (loop $l
          (drop (call $spawn (i32.shl (local.get $fd) (i32.const 8))))
          (drop (call $spawn (i32.or (i32.shl (local.get $b) (i32.const 8)) (i32.const 1))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 4))))
        (block $done (loop $w
          (br_if $done (i32.ge_u (i32.atomic.load (i32.const 204)) (i32.const 8)))
          (drop (memory.atomic.wait32 (i32.const 204) (i32.atomic.load (i32.const 204)) (i64.const 1000000)))
          (br $w)))
        (call $rec (i32.atomic.load (i32.const 212)))
        (call $rec (i32.atomic.load (i32.const 208)))
        (call $report (i32.const 2))"#
    );
    let data = format!("{DATA_F} (data (i32.const 1060) \"g.txt\")");
    let e = engine();
    let m = load(&e, &wat_mem("(memory 10 10 shared)", &data, &body, thread));
    let (mut c, report) = config_with(&dir);
    c.limits.max_threads = 16;
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
    let sum: u32 = content.iter().map(|&b| u32::from(b)).sum();
    assert_eq!(records(&report), vec![SUCCESS, 4000, sum as i32], "every byte read once");
    let g = std::fs::read(dir.join("g.txt")).unwrap();
    assert_eq!(g.len(), 4 * 500 * 4, "no write lost");
    assert!(g.chunks(4).all(|c| c == b"XYZW"), "no write torn");
}

/// Threads read and write a descriptor in loops while main closes it and renumbers other
/// files over its number: every call either works on some file or fails with `badf`; the
/// run ends normally and no host descriptor outlives it.
#[test]
fn close_and_renumber_racing_with_direct_io_leak_no_descriptors() {
    if !isolated("close_and_renumber_racing_with_direct_io_leak_no_descriptors") {
        return;
    }
    let dir = dir_with("direct-close-race", &vec![1u8; 1 << 16]);
    let thread = r#"
        (local.set $iov (i32.add (i32.const 2048) (i32.shl (local.get $tid) (i32.const 4))))
        (call $set (local.get $iov) (i32.add (i32.const 16384) (i32.shl (local.get $tid) (i32.const 12))) (i32.const 4096))
        (call $started)
        (loop $l
          (drop (call $fd_pread (local.get $arg) (local.get $iov) (i32.const 1) (i64.const 0) (i32.add (local.get $iov) (i32.const 8))))
          (drop (call $fd_read (local.get $arg) (local.get $iov) (i32.const 1) (i32.add (local.get $iov) (i32.const 8))))
          (drop (call $fd_pwrite (local.get $arg) (local.get $iov) (i32.const 1) (i64.const 4096) (i32.add (local.get $iov) (i32.const 8))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 2000))))
        (drop (i32.atomic.rmw.add (i32.const 204) (i32.const 1)))
        (drop (memory.atomic.notify (i32.const 204) (i32.const -1)))"#;
    let body = format!(
        r#"{OPEN_F}
        (drop (call $spawn (local.get $fd)))
        (drop (call $spawn (local.get $fd)))
        (call $wait_started (i32.const 2))
        (loop $l
          (drop (call $fd_close (local.get $fd)))
          (drop (call $open (i32.const 1024) (i32.const 5) (i32.const 0) (i64.const 0x1fffffff) (i32.const 0)))
          (drop (call $fd_renumber (call $opened) (local.get $fd)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (i32.atomic.load (i32.const 204)) (i32.const 2))))
        (call $rec (local.get $i))
        (call $report (i32.const 2))"#
    );
    let e = engine();
    let m = load(&e, &wat_mem("(memory 10 10 shared)", DATA_F, &body, thread));
    let (c, _) = config_with(&dir);
    let before = open_fds();
    for _ in 0..3 {
        let (exit, _) = run_watched(&m, &c);
        assert_eq!(exit.kind, ExitKind::Code, "{exit:?}");
    }
    assert!(open_fds() <= before + 2, "descriptors leaked: {before} -> {}", open_fds());
}

/// Threads doing 16 MiB direct reads and writes in a loop end on timeout and on cancel
/// within a bound, and leave no descriptors behind.
#[test]
fn big_direct_io_in_loops_ends_on_timeout_and_cancel() {
    if !isolated("big_direct_io_in_loops_ends_on_timeout_and_cancel") {
        return;
    }
    let dir = temp_dir("direct-big-loop");
    std::fs::write(dir.join("f.txt"), vec![3u8; 16 << 20]).unwrap();
    let thread = r#"
        (local.set $iov (i32.add (i32.const 2048) (i32.shl (local.get $tid) (i32.const 4))))
        (call $set (local.get $iov) (i32.const 65536) (i32.const 0x1000000))
        (call $started)
        (loop $l
          (drop (call $fd_pread (local.get $arg) (local.get $iov) (i32.const 1) (i64.const 0) (i32.add (local.get $iov) (i32.const 8))))
          (drop (call $fd_pwrite (local.get $arg) (local.get $iov) (i32.const 1) (i64.const 0) (i32.add (local.get $iov) (i32.const 8))))
          (br $l))"#;
    let body = format!(
        r#"{OPEN_F}
        (drop (call $spawn (local.get $fd)))
        (drop (call $spawn (local.get $fd)))
        (call $wait_started (i32.const 2))
        (call $wait_forever)"#
    );
    let e = engine();
    let m = load(&e, &wat_mem("(memory 300 300 shared)", DATA_F, &body, thread));
    let before = open_fds();
    let (mut c, _) = config_with(&dir);
    c.timeout = Some(Duration::from_millis(300));
    let (exit, took) = run_watched(&m, &c);
    assert_eq!(exit.kind, ExitKind::Timeout, "{exit:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    c.timeout = None;
    let run = Run::start_background(&m, &c).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    run.cancel();
    let exit = within(Duration::from_secs(30), move || run.wait());
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(open_fds() <= before + 2, "descriptors leaked: {before} -> {}", open_fds());
}
