//! The `fd_*` functions of our WASI preview 1, through WAT guests: file I/O in a preopened
//! directory (content checked on the host), append, renumbering and closing stdio,
//! directories and preopens, errno choices, and blocked reads and writes (stdin, pipes,
//! FIFOs) that must end when the run is cancelled or times out.
//!
//! Each guest records the results of its calls (errnos, counts, loaded words) as i32s and
//! writes them, in one `fd_write`, to a report stream the test captures; the test
//! compares them with what it expects.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::child::isolated;
use crate::common::fd_guest::{config_with, records, word};
use crate::common::wasi::*;
use crate::common::*;
use wasithreads::config::Preopen;
use wasithreads::io::{Input, Output};
use wasithreads::{ExitKind, Run, RunConfig};

fn wat(data: &str, body: &str, thread: &str) -> String {
    crate::common::fd_guest::TEMPLATE
        .replace("MEM", "(memory 4 4 shared)")
        .replace("DATA", data)
        .replace("BODY", body)
        .replace("THREAD", thread)
}

fn run_ok(wat: &str, c: &RunConfig) {
    let e = engine();
    let m = load(&e, wat);
    let (exit, _) = run_watched(&m, c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}");
}

/// Starts `wat`, waits until `ready` holds, cancels, and checks that the run ends soon
/// (a generous liveness bound) with every thread terminated.
fn cancel_when(wat: &str, c: &RunConfig, threads: usize, ready: impl Fn() -> bool) {
    let e = engine();
    let m = load(&e, wat);
    let exits = Exits::default();
    let mut c = c.clone();
    exits.install(&mut c);
    let run = Run::start_background(&m, &c).unwrap();
    eventually("the guest to block", ready);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(run.try_wait(), None, "still running");
    let t = Instant::now();
    run.cancel();
    let exit = within(Duration::from_secs(30), move || run.wait());
    assert!(t.elapsed() < Duration::from_secs(10), "cancel took {:?}", t.elapsed());
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");
    let got = exits.sorted();
    assert_eq!(got.len(), threads, "{got:?}");
    assert!(got.iter().all(|(_, h)| h.is_terminated()), "{got:?}");
}

/// A file in a preopened directory is written, read, seeked, told, pread and pwritten
/// with the results preview 1 gives, its stat, flags and times answer as set, and its
/// content checked on the host is what the guest wrote.
#[test]
fn file_write_read_seek_tell_pread_pwrite_and_state() {
    let dir = temp_dir("wasi-fd-file");
    let (c, report) = config_with(&dir);
    let body = format!(
        r#"
        (call $rec (call $open (i32.const 1024) (i32.const 5) (i32.const {oflags}) (i64.const {ALL_RIGHTS}) (i32.const 0)))
        (local.set $fd (call $opened))
        (call $rec (call $write (local.get $fd) (i32.const 1040) (i32.const 11)))
        (call $rec (call $count))
        (call $rec (call $tell (local.get $fd)))
        (call $rec (call $pos))
        (call $rec (call $seek (local.get $fd) (i64.const 0) (i32.const 0)))
        (call $rec (call $pos))
        (call $rec (call $read (local.get $fd) (i32.const 3000) (i32.const 5)))
        (call $rec (call $count))
        (call $rec (i32.load (i32.const 3000)))
        (call $rec (call $tell (local.get $fd)))
        (call $rec (call $pos))
        (call $rec (call $pwrite (local.get $fd) (i32.const 1060) (i32.const 5) (i64.const 0)))
        (call $rec (call $count))
        (call $rec (call $tell (local.get $fd)))
        (call $rec (call $pos))
        (call $rec (call $pread (local.get $fd) (i32.const 3100) (i32.const 100) (i64.const 6)))
        (call $rec (call $count))
        (call $rec (i32.load (i32.const 3100)))
        (call $rec (call $seek (local.get $fd) (i64.const -2) (i32.const 2)))
        (call $rec (call $pos))
        (call $rec (call $seek (local.get $fd) (i64.const -1) (i32.const 0)))
        (call $rec (call $read (local.get $fd) (i32.const 3200) (i32.const 100)))
        (call $rec (call $count))
        (call $rec (call $read (local.get $fd) (i32.const 3200) (i32.const 100)))
        (call $rec (call $count))
        (call $rec (call $fd_filestat_get (local.get $fd) (i32.const 128)))
        (call $rec (i32.load8_u (i32.const 144)))
        (call $rec (i32.wrap_i64 (i64.load (i32.const 160))))
        (call $rec (call $fd_filestat_set_size (local.get $fd) (i64.const 13)))
        (call $rec (call $fd_sync (local.get $fd)))
        (call $rec (call $fd_datasync (local.get $fd)))
        (call $rec (call $fd_advise (local.get $fd) (i64.const 0) (i64.const 0) (i32.const 2)))
        (call $rec (call $fd_allocate (local.get $fd) (i64.const 0) (i64.const 100)))
        (call $rec (call $fd_fdstat_get (local.get $fd) (i32.const 128)))
        (call $rec (i32.load8_u (i32.const 128)))
        (call $rec (i32.load16_u (i32.const 130)))
        (call $rec (i32.and (i32.wrap_i64 (i64.load (i32.const 136))) (i32.const {rw})))
        (call $rec (call $fd_fdstat_set_rights (local.get $fd) (i64.const 0) (i64.const 0)))
        (call $rec (call $fd_filestat_set_times (local.get $fd) (i64.const 1000000000000) (i64.const 2000000000000) (i32.const 5)))
        (call $rec (call $fd_filestat_set_times (local.get $fd) (i64.const 0) (i64.const 0) (i32.const 3)))
        (call $rec (call $fd_close (local.get $fd)))
        (call $rec (call $fd_close (local.get $fd)))
        (call $rec (call $write (local.get $fd) (i32.const 1040) (i32.const 1)))
        (call $report (i32.const 2))"#,
        oflags = CREAT | TRUNC,
        rw = FD_READ | FD_WRITE,
    );
    let data =
        r#"(data (i32.const 1024) "f.txt") (data (i32.const 1040) "hello world") (data (i32.const 1060) "HELLO")"#;
    run_ok(&wat(data, &body, ""), &c);
    assert_eq!(
        records(&report),
        vec![
            SUCCESS,
            SUCCESS,
            11, // write
            SUCCESS,
            11, // tell
            SUCCESS,
            0, // seek set 0
            SUCCESS,
            5,
            word(b"hell"), // read 5
            SUCCESS,
            5, // tell
            SUCCESS,
            5, // pwrite at 0
            SUCCESS,
            5, // the cursor did not move
            SUCCESS,
            5,
            word(b"worl"), // pread at 6: "world"
            SUCCESS,
            9,     // seek end -2
            INVAL, // seek set -1
            SUCCESS,
            2, // read the rest: "ld"
            SUCCESS,
            0, // end of file
            SUCCESS,
            4,
            11,      // filestat: regular file, 11 bytes
            SUCCESS, // set_size 13
            SUCCESS,
            SUCCESS,
            SUCCESS, // sync, datasync, advise
            NOTSUP,  // allocate
            SUCCESS,
            4,
            0,
            (FD_READ | FD_WRITE) as i32, // fdstat: regular, no flags, read+write
            NOTSUP,                      // set_rights
            SUCCESS,                     // set_times atim, mtim
            INVAL,                       // set_times atim and atim_now
            SUCCESS,
            BADF,
            BADF, // close, close again, write after close
        ]
    );
    // The times first: reading the file may update its atime.
    let m = std::fs::metadata(dir.join("f.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((m.atime(), m.mtime()), (1000, 2000));
    assert_eq!(std::fs::read(dir.join("f.txt")).unwrap(), b"HELLO world\0\0");
}

/// Regular files move data straight between the file and the guest's buffers: every
/// buffer of an array is filled or written in order (empty ones skipped), at the cursor
/// or at an offset; a write with a buffer outside memory traps before anything moves (the
/// file keeps its bytes).
#[test]
fn regular_files_read_and_write_arrays_of_buffers_in_order() {
    let dir = temp_dir("wasi-fd-iovecs");
    let (c, report) = config_with(&dir);
    // Iovec arrays at 2048: [1040+0,3) [1040+3,0) [1040+3,8) for writing "hello world";
    // [3000,2) [3010,0) [3020,3) [3030,100) for reading.
    let body = r#"
        (call $rec (call $open (i32.const 1024) (i32.const 5) (i32.const 9) (i64.const 0x1fffffff) (i32.const 0)))
        (local.set $fd (call $opened))
        (i32.store (i32.const 2048) (i32.const 1040)) (i32.store (i32.const 2052) (i32.const 3))
        (i32.store (i32.const 2056) (i32.const 1043)) (i32.store (i32.const 2060) (i32.const 0))
        (i32.store (i32.const 2064) (i32.const 1043)) (i32.store (i32.const 2068) (i32.const 8))
        (call $rec (call $fd_write (local.get $fd) (i32.const 2048) (i32.const 3) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (call $fd_pwrite (local.get $fd) (i32.const 2048) (i32.const 3) (i64.const 20) (i32.const 48)))
        (call $rec (call $count))
        (i32.store (i32.const 2100) (i32.const 3000)) (i32.store (i32.const 2104) (i32.const 2))
        (i32.store (i32.const 2108) (i32.const 3010)) (i32.store (i32.const 2112) (i32.const 0))
        (i32.store (i32.const 2116) (i32.const 3020)) (i32.store (i32.const 2120) (i32.const 3))
        (i32.store (i32.const 2124) (i32.const 3030)) (i32.store (i32.const 2128) (i32.const 100))
        (call $rec (call $fd_pread (local.get $fd) (i32.const 2100) (i32.const 4) (i64.const 20) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (i32.load16_u (i32.const 3000)))
        (call $rec (i32.load (i32.const 3020)))
        (call $rec (i32.load (i32.const 3030)))
        (call $rec (call $seek (local.get $fd) (i64.const 1) (i32.const 0)))
        (call $rec (call $fd_read (local.get $fd) (i32.const 2100) (i32.const 4) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (i32.load16_u (i32.const 3000)))
        (call $rec (call $tell (local.get $fd)))
        (call $rec (call $pos))
        (call $report (i32.const 2))
        ;; A write whose last buffer ends past memory (4 pages): a trap before anything
        ;; is written, as in Wasmtime 46.
        (i32.store (i32.const 2068) (i32.const 0x3ffff))
        (i32.store (i32.const 2064) (i32.const 0x3fff0))
        (drop (call $fd_pwrite (local.get $fd) (i32.const 2048) (i32.const 3) (i64.const 40) (i32.const 48)))"#;
    let data = r#"(data (i32.const 1024) "f.txt") (data (i32.const 1040) "hello world")"#;
    let e = engine();
    let (exit, _) = run_watched(&load(&e, &wat(data, body, "")), &c);
    assert_eq!(exit.kind, ExitKind::Trap, "{exit:?}");
    assert_eq!(
        records(&report),
        vec![
            SUCCESS,
            SUCCESS,
            11, // fd_write of 3 + 0 + 8 bytes
            SUCCESS,
            11, // the same at offset 20
            SUCCESS,
            11, // pread at 20 into 2 + 0 + 3 + 100
            i32::from(u16::from_le_bytes(*b"he")),
            word(b"llo\0"),
            word(b" wor"),
            SUCCESS,
            SUCCESS,
            30, // read at the cursor (1): the rest of the file, 30 bytes
            i32::from(u16::from_le_bytes(*b"el")),
            SUCCESS,
            31, // the cursor moved by what was read
        ]
    );
    let mut want = b"hello world".to_vec();
    want.resize(20, 0);
    want.extend_from_slice(b"hello world");
    assert_eq!(std::fs::read(dir.join("f.txt")).unwrap(), want, "the trapping write wrote nothing");
}

/// A file opened with `append` gets its writes at its end until `fd_fdstat_set_flags`
/// clears the flag; the content checked on the host shows both.
#[test]
fn append_mode_appends_every_write_until_cleared() {
    let dir = temp_dir("wasi-fd-append");
    std::fs::write(dir.join("a.txt"), b"abc").unwrap();
    let (c, report) = config_with(&dir);
    let body = format!(
        r#"
        (call $rec (call $open (i32.const 1024) (i32.const 5) (i32.const 0) (i64.const {ALL_RIGHTS}) (i32.const {APPEND})))
        (local.set $fd (call $opened))
        (call $rec (call $write (local.get $fd) (i32.const 1040) (i32.const 3)))
        (call $rec (call $pwrite (local.get $fd) (i32.const 1043) (i32.const 1) (i64.const 0)))
        (call $rec (call $fd_fdstat_get (local.get $fd) (i32.const 128)))
        (call $rec (i32.load16_u (i32.const 130)))
        (call $rec (call $fd_fdstat_set_flags (local.get $fd) (i32.const 0)))
        (call $rec (call $fd_fdstat_get (local.get $fd) (i32.const 128)))
        (call $rec (i32.load16_u (i32.const 130)))
        (call $rec (call $seek (local.get $fd) (i64.const 0) (i32.const 0)))
        (call $rec (call $write (local.get $fd) (i32.const 1044) (i32.const 1)))
        (call $rec (call $fd_fdstat_set_flags (local.get $fd) (i32.const 2)))
        (call $report (i32.const 2))"#
    );
    let data = r#"(data (i32.const 1024) "a.txt") (data (i32.const 1040) "defXQ")"#;
    run_ok(&wat(data, &body, ""), &c);
    assert_eq!(
        records(&report),
        vec![SUCCESS, SUCCESS, SUCCESS, SUCCESS, APPEND, SUCCESS, SUCCESS, 0, SUCCESS, SUCCESS, INVAL]
    );
    assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"QbcdefX");
}

/// Reading a file opened write-only and writing one opened read-only is `badf`, the
/// file unchanged: rights are checked, not only the host's open mode.
#[test]
fn reading_write_only_and_writing_read_only_files_is_badf() {
    let dir = temp_dir("wasi-fd-rights");
    std::fs::write(dir.join("r.txt"), b"data").unwrap();
    let (c, report) = config_with(&dir);
    let body = format!(
        r#"
        (call $rec (call $open (i32.const 1024) (i32.const 5) (i32.const 0) (i64.const {FD_READ}) (i32.const 0)))
        (local.set $fd (call $opened))
        (call $rec (call $write (local.get $fd) (i32.const 1040) (i32.const 1)))
        (call $rec (call $pwrite (local.get $fd) (i32.const 1040) (i32.const 1) (i64.const 0)))
        (call $rec (call $read (local.get $fd) (i32.const 3000) (i32.const 4)))
        (call $rec (call $count))
        (call $rec (call $fd_fdstat_get (local.get $fd) (i32.const 128)))
        (call $rec (i32.and (i32.wrap_i64 (i64.load (i32.const 136))) (i32.const {rw})))
        (call $rec (call $open (i32.const 1024) (i32.const 5) (i32.const 0) (i64.const {FD_WRITE}) (i32.const 0)))
        (local.set $fd (call $opened))
        (call $rec (call $read (local.get $fd) (i32.const 3000) (i32.const 4)))
        (call $rec (call $pread (local.get $fd) (i32.const 3000) (i32.const 4) (i64.const 0)))
        (call $rec (call $fd_fdstat_get (local.get $fd) (i32.const 128)))
        (call $rec (i32.and (i32.wrap_i64 (i64.load (i32.const 136))) (i32.const {rw})))
        (call $report (i32.const 2))"#,
        rw = FD_READ | FD_WRITE,
    );
    let data = r#"(data (i32.const 1024) "r.txt") (data (i32.const 1040) "x")"#;
    run_ok(&wat(data, &body, ""), &c);
    assert_eq!(
        records(&report),
        vec![SUCCESS, BADF, BADF, SUCCESS, 4, SUCCESS, FD_READ as i32, SUCCESS, BADF, BADF, SUCCESS, FD_WRITE as i32]
    );
    assert_eq!(std::fs::read(dir.join("r.txt")).unwrap(), b"data");
}

/// Directories, stdio and preopens answer `fd_*` calls with the errnos, types and
/// rights Wasmtime gives (seeks on pipes are `spipe`, writes to stdin `badf`...), so
/// programs written against Wasmtime behave the same.
#[test]
fn directories_stdio_and_preopens_answer_as_wasmtime() {
    let dir = temp_dir("wasi-fd-dir");
    let (c, report) = config_with(&dir);
    let body = r#"
        ;; the preopen
        (call $rec (call $read (i32.const 3) (i32.const 3000) (i32.const 4)))
        (call $rec (call $write (i32.const 3) (i32.const 3000) (i32.const 4)))
        (call $rec (call $fd_fdstat_get (i32.const 3) (i32.const 128)))
        (call $rec (i32.load8_u (i32.const 128)))
        (call $rec (call $fd_filestat_get (i32.const 3) (i32.const 128)))
        (call $rec (i32.load8_u (i32.const 144)))
        (call $rec (call $fd_prestat_get (i32.const 3) (i32.const 128)))
        (call $rec (i32.load8_u (i32.const 128)))
        (call $rec (i32.load (i32.const 132)))
        (call $rec (call $fd_prestat_dir_name (i32.const 3) (i32.const 3000) (i32.const 7)))
        (call $rec (call $fd_prestat_dir_name (i32.const 3) (i32.const 3000) (i32.const 8)))
        (call $rec (i32.load (i32.const 3000)))
        (call $rec (i32.load (i32.const 3004)))
        (call $rec (call $seek (i32.const 3) (i64.const 0) (i32.const 0)))
        (call $rec (call $fd_sync (i32.const 3)))
        (call $rec (call $fd_fdstat_set_flags (i32.const 3) (i32.const 0)))
        (call $rec (call $fd_fdstat_set_rights (i32.const 3) (i64.const 0) (i64.const 0)))
        ;; stdio
        (call $rec (call $fd_prestat_get (i32.const 1) (i32.const 128)))
        (call $rec (call $fd_prestat_dir_name (i32.const 1) (i32.const 3000) (i32.const 8)))
        (call $rec (call $seek (i32.const 1) (i64.const 0) (i32.const 0)))
        (call $rec (call $tell (i32.const 0)))
        (call $rec (call $pread (i32.const 0) (i32.const 3000) (i32.const 4) (i64.const 0)))
        (call $rec (call $pwrite (i32.const 1) (i32.const 3000) (i32.const 4) (i64.const 0)))
        (call $rec (call $pread (i32.const 1) (i32.const 3000) (i32.const 4) (i64.const 0)))
        (call $rec (call $write (i32.const 0) (i32.const 3000) (i32.const 4)))
        (call $rec (call $read (i32.const 1) (i32.const 3000) (i32.const 4)))
        (call $rec (call $fd_fdstat_set_rights (i32.const 1) (i64.const 0) (i64.const 0)))
        (call $rec (call $fd_fdstat_set_flags (i32.const 1) (i32.const 0)))
        (call $rec (call $fd_sync (i32.const 1)))
        (call $rec (call $fd_fdstat_get (i32.const 1) (i32.const 128)))
        (call $rec (i32.load8_u (i32.const 128)))
        (call $rec (i32.wrap_i64 (i64.load (i32.const 136))))
        (call $rec (call $fd_fdstat_get (i32.const 0) (i32.const 128)))
        (call $rec (i32.wrap_i64 (i64.load (i32.const 136))))
        (call $rec (call $fd_filestat_get (i32.const 2) (i32.const 128)))
        (call $rec (call $fd_prestat_get (i32.const 77) (i32.const 128)))
        ;; a preopen may be closed
        (call $rec (call $fd_close (i32.const 3)))
        (call $rec (call $fd_prestat_get (i32.const 3) (i32.const 128)))
        (call $report (i32.const 2))"#;
    // stdin is empty bytes and stdout discarded, neither a terminal.
    let mut c = c;
    c.stdin = Input::Bytes(Arc::from(&b""[..]));
    c.stdout = Output::Null;
    run_ok(&wat("", body, ""), &c);
    let name = b"/sandbox";
    assert_eq!(
        records(&report),
        vec![
            BADF,
            BADF, // read, write a directory
            SUCCESS,
            3, // fdstat: directory
            SUCCESS,
            3, // filestat: directory
            SUCCESS,
            0,
            8, // prestat: dir, name length 8
            NAMETOOLONG,
            SUCCESS,
            word(&name[..4]),
            word(&name[4..]),
            BADF,
            BADF,
            BADF,   // seek, sync, set_flags
            NOTSUP, // set_rights
            BADF,
            NOTDIR, // prestat of stdout
            SPIPE,
            SPIPE,
            SPIPE,
            SPIPE, // seek stdout, tell stdin, pread stdin, pwrite stdout
            BADF,
            BADF,
            BADF, // pread stdout, write stdin, read stdout
            BADF,
            BADF,
            BADF, // set_rights, set_flags, sync on stdout
            SUCCESS,
            0,
            FD_WRITE as i32, // stdout: unknown type (a callback), write right
            SUCCESS,
            FD_READ as i32,
            SUCCESS,
            BADF, // no such fd
            SUCCESS,
            BADF, // close the preopen, then it is gone
        ]
    );
}

/// Stdout renumbered to another descriptor still reaches the host's output callback, and
/// a renumber that fails leaves both descriptors as they were.
#[test]
fn renumbered_stdout_still_reaches_the_callback_and_a_failed_renumber_changes_nothing() {
    let dir = temp_dir("wasi-fd-renumber");
    let dir2 = temp_dir("wasi-fd-renumber2");
    let (mut c, report) = config_with(&dir);
    c.preopens.push(Preopen { host: dir2.clone(), guest: "/other".into(), read_only: false });
    let out = Capture::default();
    c.stdout = out.output();
    let body = r#"
        (call $rec (call $fd_renumber (i32.const 1) (i32.const 4)))
        (call $rec (call $write (i32.const 4) (i32.const 1024) (i32.const 6)))
        (call $rec (call $write (i32.const 1) (i32.const 1024) (i32.const 6)))
        (call $rec (call $fd_prestat_get (i32.const 4) (i32.const 128)))
        ;; fails: 9 is not open (either way round); nothing changes
        (call $rec (call $fd_renumber (i32.const 9) (i32.const 4)))
        (call $rec (call $fd_renumber (i32.const 4) (i32.const 9)))
        (call $rec (call $fd_renumber (i32.const 1) (i32.const 3)))
        (call $rec (call $write (i32.const 4) (i32.const 1030) (i32.const 6)))
        (call $rec (call $fd_prestat_get (i32.const 3) (i32.const 128)))
        ;; renumber onto itself
        (call $rec (call $fd_renumber (i32.const 4) (i32.const 4)))
        (call $rec (call $write (i32.const 4) (i32.const 1036) (i32.const 5)))
        ;; stderr (the report) moved to 3; the preopen there is closed
        (call $rec (call $fd_renumber (i32.const 2) (i32.const 3)))
        (call $rec (call $fd_prestat_get (i32.const 3) (i32.const 128)))
        (call $report (i32.const 3))"#;
    let data = r#"(data (i32.const 1024) "first\nsecondthird")"#;
    run_ok(&wat(data, body, ""), &c);
    assert_eq!(
        records(&report),
        vec![SUCCESS, SUCCESS, BADF, BADF, BADF, BADF, BADF, SUCCESS, SUCCESS, SUCCESS, SUCCESS, SUCCESS, BADF]
    );
    assert_eq!(out.text(), "first\nsecondthird");
}

/// A write to stdout after the guest closed it fails with `badf` (the host's own stdout is
/// untouched).
#[test]
fn a_closed_stdout_fails_with_badf() {
    let (mut c, report) = config_with(&temp_dir("wasi-fd-close"));
    let out = Capture::default();
    c.stdout = out.output();
    let body = r#"
        (call $rec (call $write (i32.const 1) (i32.const 1024) (i32.const 3)))
        (call $rec (call $fd_close (i32.const 1)))
        (call $rec (call $write (i32.const 1) (i32.const 1024) (i32.const 3)))
        (call $rec (call $fd_close (i32.const 1)))
        (call $rec (call $fd_fdstat_get (i32.const 1) (i32.const 128)))
        (call $report (i32.const 2))"#;
    run_ok(&wat(r#"(data (i32.const 1024) "one")"#, body, ""), &c);
    assert_eq!(records(&report), vec![SUCCESS, SUCCESS, BADF, BADF, BADF]);
    assert_eq!(out.text(), "one");
}

/// `fd_write` gathers its iovecs into one output callback call (a host sees each write
/// whole), empty ones included, and refuses more than 1024 iovecs with `inval`.
#[test]
fn fd_write_gathers_iovecs_into_one_callback_and_refuses_too_many() {
    let (mut c, report) = config_with(&temp_dir("wasi-fd-iovecs"));
    let out = Capture::default();
    c.stdout = out.output();
    // Three ciovecs at 2048: "ab", "", "cde"; then 1025 ciovecs; then 1024 empty ones.
    let body = r#"
        (i32.store (i32.const 2048) (i32.const 1024)) (i32.store (i32.const 2052) (i32.const 2))
        (i32.store (i32.const 2056) (i32.const 1030)) (i32.store (i32.const 2060) (i32.const 0))
        (i32.store (i32.const 2064) (i32.const 1026)) (i32.store (i32.const 2068) (i32.const 3))
        (call $rec (call $fd_write (i32.const 1) (i32.const 2048) (i32.const 3) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (call $fd_write (i32.const 1) (i32.const 8192) (i32.const 1025) (i32.const 48)))
        (call $rec (call $fd_write (i32.const 1) (i32.const 8192) (i32.const 1024) (i32.const 48)))
        (call $rec (call $count))
        (call $rec (call $fd_read (i32.const 0) (i32.const 8192) (i32.const 1025) (i32.const 48)))
        (call $report (i32.const 2))"#;
    c.stdin = Input::Bytes(Arc::from(&b"x"[..]));
    run_ok(&wat(r#"(data (i32.const 1024) "abcde")"#, body, ""), &c);
    assert_eq!(records(&report), vec![SUCCESS, 5, INVAL, SUCCESS, 0, INVAL]);
    let chunks: Vec<Vec<u8>> = out.0.lock().unwrap().iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(chunks[0], b"abcde", "one callback call for the whole fd_write");
}

/// Each thread reads stdin (16 bytes at a time) and echoes what it got to stdout, until
/// end of input or an error.
const ECHO_THREAD: &str = r#"
    (local.set $iov (i32.add (i32.const 2048) (i32.shl (local.get $tid) (i32.const 4))))
    (call $started)
    (block $end (loop $again
      (i32.store (local.get $iov) (i32.add (i32.const 3000) (i32.shl (local.get $tid) (i32.const 6))))
      (i32.store offset=4 (local.get $iov) (i32.const 16))
      (br_if $end (call $fd_read (i32.const 0) (local.get $iov) (i32.const 1) (i32.add (local.get $iov) (i32.const 8))))
      (br_if $end (i32.eqz (i32.load offset=8 (local.get $iov))))
      (i32.store offset=4 (local.get $iov) (i32.load offset=8 (local.get $iov)))
      (drop (call $fd_write (i32.const 1) (local.get $iov) (i32.const 1) (i32.add (local.get $iov) (i32.const 12))))
      (br $again)))"#;

const TWO_READERS_MAIN: &str = r#"
    (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 0)))
    (call $wait_started (i32.const 2))
    (call $wait_forever)"#;

/// Two threads reading a stdin pipe share its data (each byte read once, echoed) and both
/// end on cancel while blocked.
#[test]
fn two_threads_reading_a_stdin_pipe_both_end_on_cancel() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    use std::io::Write;
    writer.write_all(b"ab").unwrap();
    let mut c = RunConfig::default();
    c.stdin = Input::File(Arc::new(File::from(std::os::fd::OwnedFd::from(reader))));
    let out = Capture::default();
    c.stdout = out.output();
    let seen = out.clone();
    cancel_when(&wat("", TWO_READERS_MAIN, ECHO_THREAD), &c, 3, move || seen.text() == "ab");
    assert_eq!(out.text(), "ab");
    drop(writer);
}

/// The same with a socket for stdin: the data is read once and both readers end on cancel.
#[test]
fn two_threads_reading_a_stdin_socket_both_end_on_cancel() {
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    use std::io::Write;
    b.write_all(b"xyz").unwrap();
    let mut c = RunConfig::default();
    c.stdin = Input::File(Arc::new(File::from(std::os::fd::OwnedFd::from(a))));
    let out = Capture::default();
    c.stdout = out.output();
    let seen = out.clone();
    cancel_when(&wat("", TWO_READERS_MAIN, ECHO_THREAD), &c, 3, move || seen.text() == "xyz");
    assert_eq!(out.text(), "xyz");
    drop(b);
}

/// A thread blocked writing to a full stdout pipe nobody reads ends with the run's
/// timeout, every thread terminated.
#[test]
fn a_thread_writing_to_a_full_stdout_pipe_ends_on_timeout() {
    let (reader, writer) = std::io::pipe().unwrap();
    let mut c = RunConfig::default();
    c.stdout = Output::File(Arc::new(File::from(std::os::fd::OwnedFd::from(writer))));
    c.timeout = Some(Duration::from_millis(300));
    let exits = Exits::default();
    exits.install(&mut c);
    // A thread writes 64 KiB at a time forever; main waits.
    let thread = r#"
        (call $started)
        (loop $again
          (br_if $again (i32.eqz (call $write (i32.const 1) (i32.const 16384) (i32.const 65536)))))"#;
    let body = r#"(drop (call $spawn (i32.const 0))) (call $wait_started (i32.const 1)) (call $wait_forever)"#;
    let e = engine();
    let m = load(&e, &wat("", body, thread));
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit.kind, ExitKind::Timeout, "{exit:?}");
    let got = exits.sorted();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|(_, h)| h.is_terminated()), "{got:?}");
    drop(reader);
}

/// A thread blocked reading a FIFO given as stdin (a path) ends on cancel.
#[test]
fn a_thread_reading_a_fifo_stdin_ends_on_cancel() {
    let dir = temp_dir("wasi-fd-fifo-stdin");
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    // A writer that never writes keeps the FIFO open (read+write, so opening never waits).
    let _writer = std::fs::OpenOptions::new().read(true).write(true).open(&fifo).unwrap();
    let mut c = RunConfig::default();
    c.stdin = Input::Path(fifo.clone());
    let out = Capture::default();
    c.stdout = out.output();
    let body = r#"(drop (call $spawn (i32.const 0))) (call $wait_started (i32.const 1)) (call $wait_forever)"#;
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = started.clone();
    c.hooks.on_thread_start = Some(Arc::new(move |_| flag.store(true, std::sync::atomic::Ordering::SeqCst)));
    cancel_when(&wat("", body, ECHO_THREAD), &c, 2, move || started.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(out.text(), "");
}

/// A FIFO opened in a preopened directory: with `nonblock` (at open or set later) a read
/// with no data returns `again`; a blocking read waits and ends on cancel.
#[test]
fn a_fifo_opened_in_a_preopen_blocks_until_cancel_and_nonblock_returns_again() {
    let dir = temp_dir("wasi-fd-fifo");
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let _writer =
        std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    // First with nonblock, from open and then from fd_fdstat_set_flags: `again`.
    let (c, report) = config_with(&dir);
    let body = format!(
        r#"
        (call $rec (call $open (i32.const 1024) (i32.const 4) (i32.const 0) (i64.const {FD_READ}) (i32.const {NONBLOCK})))
        (local.set $fd (call $opened))
        (call $rec (call $read (local.get $fd) (i32.const 3000) (i32.const 4)))
        (call $rec (call $fd_fdstat_get (local.get $fd) (i32.const 128)))
        (call $rec (i32.load16_u (i32.const 130)))
        (call $rec (call $pread (local.get $fd) (i32.const 3000) (i32.const 4) (i64.const 0)))
        (call $rec (call $seek (local.get $fd) (i64.const 0) (i32.const 1)))
        (call $rec (call $open (i32.const 1024) (i32.const 4) (i32.const 0) (i64.const {FD_READ}) (i32.const 0)))
        (local.set $fd (call $opened))
        (call $rec (call $fd_fdstat_set_flags (local.get $fd) (i32.const {NONBLOCK})))
        (call $rec (call $read (local.get $fd) (i32.const 3000) (i32.const 4)))
        (call $report (i32.const 2))"#
    );
    let data = r#"(data (i32.const 1024) "fifo")"#;
    run_ok(&wat(data, &body, ""), &c);
    assert_eq!(records(&report), vec![SUCCESS, AGAIN, SUCCESS, NONBLOCK, SPIPE, SPIPE, SUCCESS, SUCCESS, AGAIN]);

    // Then a blocking read in a thread, ended by cancel.
    let thread = format!(
        r#"
        (drop (call $open (i32.const 1024) (i32.const 4) (i32.const 0) (i64.const {FD_READ}) (i32.const 0)))
        (call $started)
        (drop (call $read (call $opened) (i32.const 3000) (i32.const 4)))"#
    );
    let body = r#"(drop (call $spawn (i32.const 0))) (call $wait_started (i32.const 1)) (call $wait_forever)"#;
    let (mut c, _) = config_with(&dir);
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = started.clone();
    c.hooks.on_thread_start = Some(Arc::new(move |_| flag.store(true, std::sync::atomic::Ordering::SeqCst)));
    cancel_when(&wat(data, body, &thread), &c, 2, move || started.load(std::sync::atomic::Ordering::SeqCst));
}

/// A read into a buffer that runs outside memory traps, as in Wasmtime: a guest pointer
/// out of bounds is a trap, not an errno.
#[test]
fn a_buffer_outside_memory_traps_as_in_wasmtime() {
    for call in [
        "(drop (call $write (i32.const 1) (i32.const 0x3fff0) (i32.const 100)))",
        "(drop (call $read (i32.const 0) (i32.const 0x3fffc) (i32.const 100)))",
        "(drop (call $fd_write (i32.const 1) (i32.const 0x7ffffff0) (i32.const 1) (i32.const 48)))",
        "(drop (call $fd_prestat_dir_name (i32.const 3) (i32.const 0x7ffffff0) (i32.const 100)))",
    ] {
        let (mut c, _) = config_with(&temp_dir("wasi-fd-oob"));
        c.stdin = Input::Bytes(Arc::from(&b"some input"[..]));
        c.stdout = Output::Null;
        let e = engine();
        let m = load(&e, &wat("", call, ""));
        let (exit, _) = run_watched(&m, &c);
        assert_eq!(exit.kind, ExitKind::Trap, "{call}: {exit:?}");
    }
}

/// Two runs writing to the same full stdout pipe both end on their timeouts: one blocked
/// writer does not hold up another run.
#[test]
fn two_runs_sharing_a_full_stdout_pipe_both_end_on_timeout() {
    let (reader, writer) = std::io::pipe().unwrap();
    let mut c = RunConfig::default();
    c.stdout = Output::File(Arc::new(File::from(std::os::fd::OwnedFd::from(writer))));
    c.timeout = Some(Duration::from_millis(300));
    let thread = r#"
        (call $started)
        (loop $again
          (br_if $again (i32.eqz (call $write (i32.const 1) (i32.const 16384) (i32.const 65536)))))"#;
    let body = r#"(drop (call $spawn (i32.const 0))) (drop (call $spawn (i32.const 0))) (call $wait_started (i32.const 2)) (call $wait_forever)"#;
    let e = engine();
    let m = load(&e, &wat("", body, thread));
    let runs: Vec<_> = (0..2).map(|_| Run::start_background(&m, &c).unwrap()).collect();
    let exits = within(Duration::from_secs(30), move || runs.iter().map(wasithreads::Run::wait).collect::<Vec<_>>());
    assert!(exits.iter().all(|x| x.kind == ExitKind::Timeout), "{exits:?}");
    drop(reader);
}

/// Two runs reading the same stdin pipe both end on cancel, and the data written to the
/// pipe is read exactly once between them.
#[test]
fn two_runs_sharing_a_stdin_pipe_both_end_on_cancel() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    use std::io::Write;
    writer.write_all(b"0123456789").unwrap();
    let mut c = RunConfig::default();
    c.stdin = Input::File(Arc::new(File::from(std::os::fd::OwnedFd::from(reader))));
    let out = Capture::default();
    c.stdout = out.output();
    let e = engine();
    let m = load(&e, &wat("", TWO_READERS_MAIN, ECHO_THREAD));
    let runs: Vec<_> = (0..2).map(|_| Run::start_background(&m, &c).unwrap()).collect();
    let seen = out.clone();
    eventually("the input to be read", move || seen.text().len() == 10);
    std::thread::sleep(Duration::from_millis(50));
    for r in &runs {
        r.cancel();
    }
    let exits = within(Duration::from_secs(30), move || runs.iter().map(wasithreads::Run::wait).collect::<Vec<_>>());
    assert!(exits.iter().all(|x| x.kind == ExitKind::Cancelled), "{exits:?}");
    let mut got: Vec<u8> = out.text().into_bytes();
    got.sort();
    assert_eq!(got, b"0123456789");
    drop(writer);
}

/// 256 threads reading and writing 16 MiB at a time at the cursor of one shared file
/// (each call under the descriptor's position lock), timeout 1 s: the run returns
/// without the 5 s grace (it used to take 6 s), every thread stopped (none left past the
/// grace), and nothing is written to the file after the run returned (it used to be
/// hundreds of MB). In a child process: it counts the process's threads.
#[test]
fn threads_queued_for_a_file_position_stop_and_write_nothing_after_the_end() {
    if !isolated("threads_queued_for_a_file_position_stop_and_write_nothing_after_the_end") {
        return;
    }
    const THREADS: usize = 256;
    let dir = temp_dir("wasi-fd-position-storm");
    let (mut c, _) = config_with(&dir);
    c.timeout = Some(Duration::from_secs(1));
    let exits = Exits::default();
    exits.install(&mut c);
    // Even threads read 16 MiB, odd ones write them, each after a seek to 0 so that the
    // file stays a few times 16 MiB; the test checks its size and when it was written.
    let thread = r#"
        (call $started)
        (loop $again
          (drop (call $seek (call $opened) (i64.const 0) (i32.const 0)))
          (if (i32.and (local.get $arg) (i32.const 1))
            (then (drop (call $write (call $opened) (i32.const 16384) (i32.const 16777216))))
            (else (drop (call $read (call $opened) (i32.const 16384) (i32.const 16777216)))))
          (br $again))"#;
    let body = format!(
        r#"
        (drop (call $open (i32.const 1024) (i32.const 4) (i32.const {CREAT}) (i64.const {ALL_RIGHTS}) (i32.const 0)))
        (loop $spawn
          (drop (call $spawn (local.get $i)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $spawn (i32.lt_u (local.get $i) (i32.const {THREADS}))))
        (call $wait_forever)"#
    );
    let wat = crate::common::fd_guest::TEMPLATE
        .replace("MEM", "(memory 257 257 shared)")
        .replace("DATA", r#"(data (i32.const 1024) "file")"#)
        .replace("BODY", &body)
        .replace("THREAD", thread);
    let e = engine();
    let m = load(&e, &wat);
    let before = os_threads();
    let (exit, took) = run_watched(&m, &c);
    let stat = |p: &std::path::Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.len(), std::os::unix::fs::MetadataExt::mtime_nsec(&m), std::os::unix::fs::MetadataExt::mtime(&m))
    };
    let at_return = stat(&dir.join("file"));
    eprintln!("position storm: {THREADS} threads, timeout 1 s, returned after {took:?}");
    assert_eq!(exit.kind, ExitKind::Timeout, "{exit:?}");
    assert!(exit.unstopped.is_empty(), "threads past the grace: {:?}", exit.unstopped);
    assert!(took < Duration::from_secs(4), "took {took:?}: the grace (5 s) was needed");
    let got = exits.sorted();
    assert_eq!(got.len(), THREADS + 1, "every thread ended");
    assert!(got.iter().all(|(_, h)| h.is_terminated()), "{:?}", got.iter().find(|(_, h)| !h.is_terminated()));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(stat(&dir.join("file")), at_return, "the file was written after the run returned");
    eventually("the run's threads to be gone", || os_threads() <= before);
}
