//! WASI calls under a directory descriptor (`src/wasi/path.rs`): path_open,
//! filestat, set_times, create/remove, rename, links, readlink, fd_readdir, the sandbox,
//! read-only preopens, FIFOs and the descriptor limit.
//!
//! Most guests are WAT that call the functions directly on the preopen (fd 3) and
//! `proc_exit(step * 1000 + errno)` at the first result that differs from the expected
//! one (`proc_exit(0)` at the end), so a failure names the step and what it got.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::child::isolated;
use crate::common::wasi::*;
use crate::common::*;
use wasithreads::{ExitKind, Module, Preopen, Run, RunConfig, RunExit};

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("wasithreads-path-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A WAT guest: strings placed in memory, a body for `_start`.
struct Guest {
    data: String,
    next: u32,
}

/// Where strings go (page 2; pages 0–1 are scratch, 3 is free).
const STRINGS: u32 = 65536;

impl Guest {
    fn new() -> Guest {
        Guest { data: String::new(), next: STRINGS }
    }

    /// Places `text` in memory; returns `(i32.const ADDR) (i32.const LEN)`.
    fn s(&mut self, text: &str) -> String {
        let addr = self.next;
        let escaped: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
        self.data.push_str(&format!("(data (i32.const {addr}) \"{escaped}\")\n"));
        self.next += text.len() as u32 + 1;
        format!("(i32.const {addr}) (i32.const {})", text.len())
    }

    fn wat(&self, body: &str) -> String {
        format!(
            r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $path_filestat_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times" (func $path_filestat_set_times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $path_create_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory" (func $path_remove_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $path_unlink_file (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename" (func $path_rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link" (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_readlink" (func $path_readlink (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 4 4 shared))
  (export "memory" (memory 0))
  {data}
  ;; Scratch: 0 an opened fd, 8 a size result, 64 a filestat, 4096.. buffers.
  (global $cookie (mut i64) (i64.const 0))
  (func $expect (param $got i32) (param $want i32) (param $step i32)
    (if (i32.ne (local.get $got) (local.get $want))
      (then (call $proc_exit (i32.add (i32.mul (local.get $step) (i32.const 1000)) (local.get $got))))))
  ;; Fails step $step (code step*1000+999) unless $ok.
  (func $assert (param $ok i32) (param $step i32)
    (if (i32.eqz (local.get $ok))
      (then (call $proc_exit (i32.add (i32.mul (local.get $step) (i32.const 1000)) (i32.const 999))))))
  ;; path_open under fd 3 with follow, the fd at 0.
  (func $open (param $path i32) (param $len i32) (param $oflags i32) (param $rights i64) (param $fdflags i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 1) (local.get $path) (local.get $len) (local.get $oflags)
      (local.get $rights) (i64.const 0) (local.get $fdflags) (i32.const 0)))
  (func (export "_start")
    (local $i i32) (local $n i32) (local $used i32)
    {body}
    (call $proc_exit (i32.const 0))))
"#,
            data = self.data,
        )
    }
}

/// `(call $expect CALL (i32.const WANT) (i32.const STEP))`
fn expect(step: u32, want: i32, call: &str) -> String {
    format!("(call $expect {call} (i32.const {want}) (i32.const {step}))\n")
}

fn preopen(c: &mut RunConfig, dir: &Path, read_only: bool) {
    c.preopens.push(Preopen { host: dir.to_path_buf(), guest: "/work".into(), read_only });
}

fn run_wat(wat: &str, c: &RunConfig) -> RunExit {
    let m = load(&engine(), wat);
    run_watched(&m, c).0
}

fn assert_exit_0(exit: &RunExit) {
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "step*1000+errno: {exit:?}");
}

/// Creating, opening, stat-ing, renaming and removing files and directories under a
/// directory descriptor give preview 1's results and errnos (new descriptors take the
/// lowest free number, removal of a non-empty directory is `notempty`, ...).
#[test]
fn create_open_stat_rename_unlink_and_their_errors() {
    let dir = TempDir::new("basic");
    std::fs::write(dir.path("hello.txt"), "hello").unwrap();
    let mut g = Guest::new();
    let (d, f, df, g_txt, sub, hello, missing) =
        (g.s("d"), g.s("d/f.txt"), g.s("d/"), g.s("g.txt"), g.s("d/sub"), g.s("hello.txt"), g.s("missing"));
    let mut b = String::new();
    b += &expect(1, SUCCESS, &format!("(call $path_create_directory (i32.const 3) {d})"));
    b += &expect(2, EXIST, &format!("(call $path_create_directory (i32.const 3) {df})"));
    b += &expect(
        3,
        SUCCESS,
        &format!("(call $open {f} (i32.const {}) (i64.const {}) (i32.const 0))", CREAT | EXCL, FD_READ | FD_WRITE),
    );
    b += &expect(
        4,
        EXIST,
        &format!("(call $open {f} (i32.const {}) (i64.const {}) (i32.const 0))", CREAT | EXCL, FD_READ | FD_WRITE),
    );
    // The new descriptor is the lowest free one: after stdio and the preopen.
    b += "(call $assert (i32.eq (i32.load (i32.const 0)) (i32.const 4)) (i32.const 5))\n";
    // A file's filestat: regular (4), its size; a directory's: directory (3).
    b += &expect(6, SUCCESS, &format!("(call $path_filestat_get (i32.const 3) (i32.const 0) {hello} (i32.const 64))"));
    b += "(call $assert (i32.eq (i32.load8_u (i32.const 80)) (i32.const 4)) (i32.const 7))\n";
    b += "(call $assert (i64.eq (i64.load (i32.const 96)) (i64.const 5)) (i32.const 8))\n";
    b += &expect(9, SUCCESS, &format!("(call $path_filestat_get (i32.const 3) (i32.const 0) {d} (i32.const 64))"));
    b += "(call $assert (i32.eq (i32.load8_u (i32.const 80)) (i32.const 3)) (i32.const 10))\n";
    b += &expect(11, NOENT, &format!("(call $path_filestat_get (i32.const 3) (i32.const 0) {missing} (i32.const 64))"));
    b += &expect(12, NOENT, &format!("(call $open {missing} (i32.const 0) (i64.const {FD_READ}) (i32.const 0))"));
    b += &expect(
        13,
        NOTDIR,
        &format!("(call $open {hello} (i32.const {DIRECTORY}) (i64.const {FD_READ}) (i32.const 0))"),
    );
    b += &expect(
        14,
        INVAL,
        &format!("(call $open {d} (i32.const {}) (i64.const {FD_READ}) (i32.const 0))", DIRECTORY | CREAT),
    );
    // A directory opens as a directory descriptor: paths resolve beneath it.
    b += &expect(15, SUCCESS, &format!("(call $open {d} (i32.const {DIRECTORY}) (i64.const {FD_READ}) (i32.const 0))"));
    let f_in_d = g.s("f.txt");
    b += "(local.set $i (i32.load (i32.const 0)))\n";
    b += &expect(
        16,
        SUCCESS,
        &format!("(call $path_filestat_get (local.get $i) (i32.const 0) {f_in_d} (i32.const 64))"),
    );
    // Rename across two directory descriptors, then the errors of removal.
    b += &expect(18, SUCCESS, &format!("(call $path_rename (local.get $i) {f_in_d} (i32.const 3) {g_txt})"));
    b += &expect(19, ISDIR, &format!("(call $path_unlink_file (i32.const 3) {d})"));
    b += &expect(20, NOTDIR, &format!("(call $path_remove_directory (i32.const 3) {g_txt})"));
    b += &expect(21, SUCCESS, &format!("(call $path_create_directory (i32.const 3) {sub})"));
    b += &expect(22, NOTEMPTY, &format!("(call $path_remove_directory (i32.const 3) {d})"));
    b += &expect(23, SUCCESS, &format!("(call $path_remove_directory (i32.const 3) {sub})"));
    b += &expect(24, SUCCESS, &format!("(call $path_unlink_file (i32.const 3) {hello})"));
    // Truncating an existing file.
    b += &expect(
        25,
        SUCCESS,
        &format!("(call $open {g_txt} (i32.const {TRUNC}) (i64.const {FD_WRITE}) (i32.const {APPEND}))"),
    );
    // Not a directory descriptor: badf (a file) / notdir (path_open on a file).
    b += &expect(26, 8, &format!("(call $path_create_directory (i32.const 4) {d})"));
    b += &expect(27, NOTDIR, &format!("(call $path_open (i32.const 4) (i32.const 0) {d} (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0))"));
    b += &expect(28, 8, &format!("(call $path_create_directory (i32.const 1) {d})"));
    b += &expect(29, 8, &format!("(call $path_create_directory (i32.const 99) {d})"));

    let mut c = RunConfig::default();
    preopen(&mut c, &dir.0, false);
    let exit = run_wat(&g.wat(&b), &c);
    assert_exit_0(&exit);
    assert!(dir.path("d").is_dir());
    assert!(!dir.path("d/f.txt").exists());
    assert_eq!(std::fs::read(dir.path("g.txt")).unwrap(), b"");
    assert!(!dir.path("d/sub").exists());
    assert!(!dir.path("hello.txt").exists());
}

/// `path_filestat_set_times` sets exact times, "now" and "omit" for each of atime and
/// mtime, through a followed symlink and on the symlink itself, and on a FIFO without
/// opening it (an open could wait).
#[test]
fn set_times_exact_now_and_omit() {
    let dir = TempDir::new("times");
    std::fs::write(dir.path("t.txt"), "t").unwrap();
    std::os::unix::fs::symlink("t.txt", dir.path("link")).unwrap();
    mkfifo(&dir.path("fifo"));
    let mut g = Guest::new();
    let (t, link, fifo) = (g.s("t.txt"), g.s("link"), g.s("fifo"));
    let mut b = String::new();
    // ATIM=1 ATIM_NOW=2 MTIM=4 MTIM_NOW=8
    b += &expect(1, SUCCESS, &format!("(call $path_filestat_set_times (i32.const 3) (i32.const 0) {t} (i64.const 1000000000123) (i64.const 2000000000456) (i32.const 5))"));
    b += &expect(
        2,
        INVAL,
        &format!(
            "(call $path_filestat_set_times (i32.const 3) (i32.const 0) {t} (i64.const 0) (i64.const 0) (i32.const 3))"
        ),
    );
    // Through a symlink (followed): the file's mtime becomes now, its atime stays.
    b += &expect(3, SUCCESS, &format!("(call $path_filestat_set_times (i32.const 3) (i32.const {FOLLOW}) {link} (i64.const 0) (i64.const 0) (i32.const 8))"));
    // A FIFO without reader or writer: no open that would wait.
    b += &expect(4, SUCCESS, &format!("(call $path_filestat_set_times (i32.const 3) (i32.const {FOLLOW}) {fifo} (i64.const 3000000000000) (i64.const 3000000000000) (i32.const 5))"));
    // The symlink itself, not followed.
    b += &expect(5, SUCCESS, &format!("(call $path_filestat_set_times (i32.const 3) (i32.const 0) {link} (i64.const 4000000000000) (i64.const 4000000000000) (i32.const 5))"));
    let mut c = RunConfig::default();
    preopen(&mut c, &dir.0, false);
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert_exit_0(&run_wat(&g.wat(&b), &c));
    let m = std::fs::metadata(dir.path("t.txt")).unwrap();
    assert_eq!((m.atime(), m.atime_nsec()), (1000, 123));
    assert!(m.mtime() >= before - 1, "mtime set to now: {} vs {before}", m.mtime());
    let m = std::fs::metadata(dir.path("fifo")).unwrap();
    assert_eq!((m.atime(), m.mtime()), (3000, 3000));
    let m = std::fs::symlink_metadata(dir.path("link")).unwrap();
    assert_eq!((m.atime(), m.mtime()), (4000, 4000));
}

/// Symlinks and hard links work inside the preopen and never lead out of it: an absolute
/// target is refused, a relative one pointing out may be created but is never followed
/// out, and `readlink` returns contents whole or truncated to the buffer.
#[test]
fn symlinks_and_hard_links_stay_in_the_sandbox() {
    let root = TempDir::new("links");
    let dir = root.path("inside");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("target.txt"), "target").unwrap();
    std::fs::write(root.path("secret"), "secret").unwrap();
    let mut g = Guest::new();
    let (target, in_link, out_link, abs_link, hard, abs, up) = (
        g.s("target.txt"),
        g.s("in-link"),
        g.s("out-link"),
        g.s("abs-link"),
        g.s("hard.txt"),
        g.s("/etc/passwd"),
        g.s("../secret"),
    );
    let mut b = String::new();
    b += &expect(1, SUCCESS, &format!("(call $path_symlink {target} (i32.const 3) {in_link})"));
    // Contents stay relative; reading it back, whole and truncated.
    b += &expect(
        2,
        SUCCESS,
        &format!("(call $path_readlink (i32.const 3) {in_link} (i32.const 4096) (i32.const 100) (i32.const 8))"),
    );
    b += "(call $assert (i32.eq (i32.load (i32.const 8)) (i32.const 10)) (i32.const 3))\n";
    // "target.t" as a little-endian u64.
    b += &format!(
        "(call $assert (i64.eq (i64.load (i32.const 4096)) (i64.const {})) (i32.const 4))\n",
        u64::from_le_bytes(*b"target.t") as i64
    );
    b += &expect(
        5,
        SUCCESS,
        &format!("(call $path_readlink (i32.const 3) {in_link} (i32.const 8192) (i32.const 4) (i32.const 8))"),
    );
    b += "(call $assert (i32.eq (i32.load (i32.const 8)) (i32.const 4)) (i32.const 6))\n";
    b += "(call $assert (i32.eq (i32.load (i32.const 8192)) (i32.const 0x67726174)) (i32.const 7))\n"; // "targ"
    b += &expect(
        8,
        INVAL,
        &format!("(call $path_readlink (i32.const 3) {target} (i32.const 4096) (i32.const 100) (i32.const 8))"),
    );
    // Followed it is the file; not followed the link; opened without follow: loop.
    b += &expect(
        9,
        SUCCESS,
        &format!("(call $path_filestat_get (i32.const 3) (i32.const {FOLLOW}) {in_link} (i32.const 64))"),
    );
    b += "(call $assert (i32.eq (i32.load8_u (i32.const 80)) (i32.const 4)) (i32.const 10))\n";
    b += &expect(
        11,
        SUCCESS,
        &format!("(call $path_filestat_get (i32.const 3) (i32.const 0) {in_link} (i32.const 64))"),
    );
    b += "(call $assert (i32.eq (i32.load8_u (i32.const 80)) (i32.const 7)) (i32.const 12))\n";
    b += &expect(13, SUCCESS, &format!("(call $open {in_link} (i32.const 0) (i64.const {FD_READ}) (i32.const 0))"));
    b += &expect(14, LOOP, &format!("(call $path_open (i32.const 3) (i32.const 0) {in_link} (i32.const 0) (i64.const {FD_READ}) (i64.const 0) (i32.const 0) (i32.const 0))"));
    // An absolute target is refused; a relative one pointing out may be created but
    // never followed out.
    b += &expect(15, PERM, &format!("(call $path_symlink {abs} (i32.const 3) {abs_link})"));
    b += &expect(16, SUCCESS, &format!("(call $path_symlink {up} (i32.const 3) {out_link})"));
    b += &expect(17, PERM, &format!("(call $open {out_link} (i32.const 0) (i64.const {FD_READ}) (i32.const 0))"));
    b += &expect(
        18,
        PERM,
        &format!("(call $path_filestat_get (i32.const 3) (i32.const {FOLLOW}) {out_link} (i32.const 64))"),
    );
    b += &expect(19, PERM, &format!("(call $open {up} (i32.const 0) (i64.const {FD_READ}) (i32.const 0))"));
    b += &expect(20, PERM, &format!("(call $open {abs} (i32.const 0) (i64.const {FD_READ}) (i32.const 0))"));
    b += &expect(21, PERM, &format!("(call $path_filestat_set_times (i32.const 3) (i32.const {FOLLOW}) {out_link} (i64.const 0) (i64.const 0) (i32.const 10))"));
    // Hard links: not through a followed symlink (inval, as Wasmtime 48), and not out.
    b += &expect(22, SUCCESS, &format!("(call $path_link (i32.const 3) (i32.const 0) {target} (i32.const 3) {hard})"));
    b += &expect(
        23,
        INVAL,
        &format!("(call $path_link (i32.const 3) (i32.const {FOLLOW}) {in_link} (i32.const 3) {abs_link})"),
    );
    b += &expect(24, PERM, &format!("(call $path_link (i32.const 3) (i32.const 0) {up} (i32.const 3) {abs_link})"));
    b += &expect(25, PERM, &format!("(call $path_rename (i32.const 3) {target} (i32.const 3) {up})"));
    b += &expect(26, PERM, &format!("(call $path_unlink_file (i32.const 3) {up})"));
    let mut c = RunConfig::default();
    c.preopens.push(Preopen { host: dir.clone(), guest: "/work".into(), read_only: false });
    assert_exit_0(&run_wat(&g.wat(&b), &c));
    assert_eq!(std::fs::read_link(dir.join("in-link")).unwrap(), Path::new("target.txt"));
    assert_eq!(std::fs::read_link(dir.join("out-link")).unwrap(), Path::new("../secret"));
    assert!(!dir.join("abs-link").exists() && std::fs::symlink_metadata(dir.join("abs-link")).is_err());
    assert_eq!(std::fs::metadata(dir.join("target.txt")).unwrap().nlink(), 2);
    assert_eq!(std::fs::read_to_string(root.path("secret")).unwrap(), "secret");
}

/// A read-only preopen refuses every change with `perm` (or the errno Wasmtime gives),
/// also in directories opened beneath it, while reading (stat, readdir) works.
#[test]
fn read_only_preopen_refuses_every_change_also_beneath_it() {
    let dir = TempDir::new("read-only");
    std::fs::write(dir.path("a.txt"), "a").unwrap();
    std::fs::create_dir(dir.path("sub")).unwrap();
    let mut g = Guest::new();
    let (a, sub, x, newname) = (g.s("a.txt"), g.s("sub"), g.s("x"), g.s("new.txt"));
    let mut b = String::new();
    b += &expect(1, SUCCESS, &format!("(call $open {a} (i32.const 0) (i64.const {FD_READ}) (i32.const 0))"));
    b += &expect(2, PERM, &format!("(call $open {a} (i32.const 0) (i64.const {FD_WRITE}) (i32.const 0))"));
    b += &expect(3, PERM, &format!("(call $open {newname} (i32.const {CREAT}) (i64.const {FD_READ}) (i32.const 0))"));
    b += &expect(4, PERM, &format!("(call $open {a} (i32.const {TRUNC}) (i64.const {FD_READ}) (i32.const 0))"));
    b += &expect(5, PERM, &format!("(call $path_create_directory (i32.const 3) {x})"));
    b += &expect(6, PERM, &format!("(call $path_remove_directory (i32.const 3) {sub})"));
    b += &expect(7, PERM, &format!("(call $path_unlink_file (i32.const 3) {a})"));
    b += &expect(8, PERM, &format!("(call $path_rename (i32.const 3) {a} (i32.const 3) {newname})"));
    b += &expect(9, PERM, &format!("(call $path_symlink {a} (i32.const 3) {newname})"));
    b += &expect(10, PERM, &format!("(call $path_link (i32.const 3) (i32.const 0) {a} (i32.const 3) {newname})"));
    b += &expect(11, PERM, &format!("(call $path_filestat_set_times (i32.const 3) (i32.const 0) {a} (i64.const 0) (i64.const 0) (i32.const 10))"));
    // Reading works: stat, readdir.
    b += &expect(12, SUCCESS, &format!("(call $path_filestat_get (i32.const 3) (i32.const 0) {a} (i32.const 64))"));
    b += &expect(
        13,
        SUCCESS,
        "(call $fd_readdir (i32.const 3) (i32.const 4096) (i32.const 4096) (i64.const 0) (i32.const 8))",
    );
    b += "(call $assert (i32.gt_u (i32.load (i32.const 8)) (i32.const 48)) (i32.const 14))\n";
    // A directory opened beneath is read-only too.
    b += &expect(
        15,
        SUCCESS,
        &format!("(call $open {sub} (i32.const {DIRECTORY}) (i64.const {FD_READ}) (i32.const 0))"),
    );
    b += "(local.set $i (i32.load (i32.const 0)))\n";
    b += &expect(16, PERM, &format!("(call $path_create_directory (local.get $i) {x})"));
    b += &expect(17, PERM, &format!("(call $path_open (local.get $i) (i32.const 0) {x} (i32.const {CREAT}) (i64.const {FD_WRITE}) (i64.const 0) (i32.const 0) (i32.const 0))"));
    let mut c = RunConfig::default();
    preopen(&mut c, &dir.0, true);
    assert_exit_0(&run_wat(&g.wat(&b), &c));
    assert_eq!(std::fs::read_to_string(dir.path("a.txt")).unwrap(), "a");
    let mut names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["a.txt", "sub"]);
    assert_eq!(std::fs::read_dir(dir.path("sub")).unwrap().count(), 0);
}

/// WAT reading the preopen with `fd_readdir` in calls of `len` bytes (at `buf`), checking
/// every entry: "." and ".." (directories), then `f0000` to
/// `f1999`, each once, regular files; `f0000`'s `d_ino` is `ino0`.
fn readdir_all(buf: u32, len: u32, bitmap: u32, ino0: u64, step: u32) -> String {
    format!(
        r#"
    (global.set $cookie (i64.const 0))
    (global.set $files (i32.const 0)) (global.set $dots (i32.const 0)) (global.set $bad (i32.const 0)) (global.set $dups (i32.const 0))
    (global.set $bitmap (i32.const {bitmap})) (global.set $ino0 (i64.const {ino0}))
    (block $end
      (loop $more
        (call $expect (call $fd_readdir (i32.const 3) (i32.const {buf}) (i32.const {len}) (global.get $cookie) (i32.const 8)) (i32.const 0) (i32.const {step}))
        (local.set $used (i32.load (i32.const 8)))
        (local.set $n (call $scan (i32.const {buf}) (local.get $used)))
        (br_if $end (i32.lt_u (local.get $used) (i32.const {len})))
        ;; A full buffer without one whole entry: no progress.
        (call $assert (local.get $n) (i32.const {s1}))
        (br $more)))
    (call $assert (i32.eq (global.get $dots) (i32.const 2)) (i32.const {s2}))
    (call $assert (i32.eq (global.get $files) (i32.const 2000)) (i32.const {s3}))
    (call $assert (i32.eqz (global.get $dups)) (i32.const {s4}))
    (call $assert (i32.eqz (global.get $bad)) (i32.const {s5}))
"#,
        s1 = step + 1,
        s2 = step + 2,
        s3 = step + 3,
        s4 = step + 4,
        s5 = step + 5,
    )
}

/// Helpers for `readdir_all`, spliced before `_start`.
const SCAN: &str = r#"
  (global $files (mut i32) (i32.const 0)) (global $dots (mut i32) (i32.const 0))
  (global $bad (mut i32) (i32.const 0)) (global $dups (mut i32) (i32.const 0))
  (global $bitmap (mut i32) (i32.const 0)) (global $ino0 (mut i64) (i64.const 0))
  ;; One whole dirent at $e: d_next 0, d_ino 8, d_namlen 16, d_type 20, name 24.
  (func $entry (param $e i32)
    (local $len i32) (local $name i32) (local $num i32) (local $k i32) (local $c i32)
    (local.set $len (i32.load offset=16 (local.get $e)))
    (local.set $name (i32.add (local.get $e) (i32.const 24)))
    (if (i32.and (i32.eq (local.get $len) (i32.const 1)) (i32.eq (i32.load8_u (local.get $name)) (i32.const 46)))
      (then
        (if (i32.ne (i32.load8_u offset=20 (local.get $e)) (i32.const 3)) (then (global.set $bad (i32.add (global.get $bad) (i32.const 1)))))
        (global.set $dots (i32.add (global.get $dots) (i32.const 1))) (return)))
    (if (i32.and (i32.eq (local.get $len) (i32.const 2)) (i32.eq (i32.load16_u (local.get $name)) (i32.const 0x2e2e)))
      (then
        (if (i32.ne (i32.load8_u offset=20 (local.get $e)) (i32.const 3)) (then (global.set $bad (i32.add (global.get $bad) (i32.const 1)))))
        (global.set $dots (i32.add (global.get $dots) (i32.const 1))) (return)))
    (if (i32.or (i32.ne (local.get $len) (i32.const 5)) (i32.ne (i32.load8_u (local.get $name)) (i32.const 102)))
      (then (global.set $bad (i32.add (global.get $bad) (i32.const 1))) (return)))
    (if (i32.ne (i32.load8_u offset=20 (local.get $e)) (i32.const 4)) (then (global.set $bad (i32.add (global.get $bad) (i32.const 1)))))
    (local.set $k (i32.const 1))
    (loop $digits
      (local.set $c (i32.sub (i32.load8_u (i32.add (local.get $name) (local.get $k))) (i32.const 48)))
      (if (i32.gt_u (local.get $c) (i32.const 9)) (then (global.set $bad (i32.add (global.get $bad) (i32.const 1))) (return)))
      (local.set $num (i32.add (i32.mul (local.get $num) (i32.const 10)) (local.get $c)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $digits (i32.lt_u (local.get $k) (i32.const 5))))
    (if (i32.ge_u (local.get $num) (i32.const 2000)) (then (global.set $bad (i32.add (global.get $bad) (i32.const 1))) (return)))
    (if (i32.and (i32.eqz (local.get $num)) (i64.ne (i64.load offset=8 (local.get $e)) (global.get $ino0)))
      (then (global.set $bad (i32.add (global.get $bad) (i32.const 1)))))
    (if (i32.load8_u (i32.add (global.get $bitmap) (local.get $num)))
      (then (global.set $dups (i32.add (global.get $dups) (i32.const 1))))
      (else (i32.store8 (i32.add (global.get $bitmap) (local.get $num)) (i32.const 1))))
    (global.set $files (i32.add (global.get $files) (i32.const 1))))
  ;; The whole entries of a buffer of $used bytes at $buf; the last one's d_next goes to
  ;; $cookie. Returns how many.
  (func $scan (param $buf i32) (param $used i32) (result i32)
    (local $pos i32) (local $n i32) (local $len i32)
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (i32.add (local.get $pos) (i32.const 24)) (local.get $used)))
        (local.set $len (i32.load offset=16 (i32.add (local.get $buf) (local.get $pos))))
        (br_if $done (i32.gt_u (i32.add (i32.add (local.get $pos) (i32.const 24)) (local.get $len)) (local.get $used)))
        (global.set $cookie (i64.load (i32.add (local.get $buf) (local.get $pos))))
        (call $entry (i32.add (local.get $buf) (local.get $pos)))
        (local.set $pos (i32.add (local.get $pos) (i32.add (i32.const 24) (local.get $len))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))
"#;

/// `fd_readdir` of a directory of two thousand entries in buffers of odd small sizes
/// (ending inside a header or a name) sees each entry exactly once, and cookies restart or
/// continue the listing where they say.
#[test]
fn readdir_of_two_thousand_entries_in_small_calls_sees_each_once() {
    let dir = TempDir::new("readdir");
    for i in 0..2000 {
        std::fs::write(dir.path(&format!("f{i:04}")), "").unwrap();
    }
    let ino0 = std::fs::metadata(dir.path("f0000")).unwrap().ino();
    let g = Guest::new();
    let mut b = String::new();
    // 60 bytes: two whole entries of 29 bytes, then 2 bytes of a third (truncated).
    b += &readdir_all(4096, 60, 16384, ino0, 10);
    // Odd sizes: each call ends inside a header or a name.
    b += &readdir_all(4096, 37, 20480, ino0, 20);
    b += &readdir_all(4096, 29 * 7 + 23, 24576, ino0, 30);
    // One call for everything (2002 entries of 29 bytes or fewer).
    b += &readdir_all(131072, 65536, 28672, ino0, 40);
    // Cookies: 0 starts over at "." (d_next 1); 1000 continues at entry 1001.
    b += &expect(
        50,
        SUCCESS,
        "(call $fd_readdir (i32.const 3) (i32.const 8192) (i32.const 25) (i64.const 0) (i32.const 8))",
    );
    b += "(call $assert (i32.eq (i32.load (i32.const 8)) (i32.const 25)) (i32.const 51))\n";
    b += "(call $assert (i64.eq (i64.load (i32.const 8192)) (i64.const 1)) (i32.const 52))\n";
    b += "(call $assert (i32.eq (i32.load8_u (i32.const 8216)) (i32.const 46)) (i32.const 53))\n";
    b += &expect(
        54,
        SUCCESS,
        "(call $fd_readdir (i32.const 3) (i32.const 8192) (i32.const 29) (i64.const 1000) (i32.const 8))",
    );
    b += "(call $assert (i64.eq (i64.load (i32.const 8192)) (i64.const 1001)) (i32.const 55))\n";
    // Past the end: nothing.
    b += &expect(
        56,
        SUCCESS,
        "(call $fd_readdir (i32.const 3) (i32.const 8192) (i32.const 100) (i64.const 5000) (i32.const 8))",
    );
    b += "(call $assert (i32.eqz (i32.load (i32.const 8))) (i32.const 57))\n";
    // fd_readdir on a non-directory: badf.
    b +=
        &expect(58, 8, "(call $fd_readdir (i32.const 1) (i32.const 8192) (i32.const 100) (i64.const 0) (i32.const 8))");
    let wat = g.wat(&b).replace("  (func (export \"_start\")", &format!("{SCAN}\n  (func (export \"_start\")"));
    let mut c = RunConfig::default();
    preopen(&mut c, &dir.0, false);
    assert_exit_0(&run_wat(&wat, &c));
}

/// Opening a FIFO never hangs a run: reading and read-write opens return at once, a
/// non-blocking write-only open without a reader is `nxio` as in POSIX, and a blocking
/// write-only open that waits for a reader ends with the run.
#[test]
fn opening_a_fifo_never_hangs_and_a_blocked_open_ends_with_the_run() {
    let dir = TempDir::new("fifo");
    mkfifo(&dir.path("fifo"));
    mkfifo(&dir.path("lonely"));
    let mut g = Guest::new();
    let (fifo, lonely) = (g.s("fifo"), g.s("lonely"));
    let mut b = String::new();
    // Reading without a writer: returns at once.
    b += &expect(1, SUCCESS, &format!("(call $open {fifo} (i32.const 0) (i64.const {FD_READ}) (i32.const 0))"));
    // Now it has a reader: a write-only open succeeds.
    b += &expect(2, SUCCESS, &format!("(call $open {fifo} (i32.const 0) (i64.const {FD_WRITE}) (i32.const 0))"));
    // No reader and non-blocking: nxio, as POSIX.
    b +=
        &expect(3, NXIO, &format!("(call $open {lonely} (i32.const 0) (i64.const {FD_WRITE}) (i32.const {NONBLOCK}))"));
    // Read-write never waits.
    b += &expect(
        4,
        SUCCESS,
        &format!("(call $open {lonely} (i32.const 0) (i64.const {}) (i32.const 0))", FD_READ | FD_WRITE),
    );
    let mut c = RunConfig::default();
    preopen(&mut c, &dir.0, false);
    assert_exit_0(&run_wat(&g.wat(&b), &c));

    // A blocking write-only open without a reader waits, and ends when the run is
    // cancelled.
    let mut g = Guest::new();
    let lonely = g.s("lonely");
    let b = expect(1, SUCCESS, &format!("(call $open {lonely} (i32.const 0) (i64.const {FD_WRITE}) (i32.const 0))"));
    let m = load(&engine(), &g.wat(&b));
    let c2 = c.clone();
    let exit = within(Duration::from_secs(60), move || {
        let run = Run::start_background(&m, &c2).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(run.try_wait().is_none(), "the open waits for a reader");
        run.cancel();
        run.wait()
    });
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");

    // ... and succeeds once a reader comes.
    let m = load(&engine(), &g.wat(&b));
    let path = dir.path("lonely");
    let exit = within(Duration::from_secs(60), move || {
        let run = Run::start_background(&m, &c).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let reader = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).unwrap();
        let exit = run.wait();
        drop(reader);
        exit
    });
    assert_exit_0(&exit);
}

/// A read of a FIFO without a writer waits for one: a later writer's bytes arrive, then
/// end of file once it has gone, and a read still waiting ends with the run.
#[test]
fn a_read_of_a_fifo_without_writer_ends_with_the_run() {
    let dir = TempDir::new("fifo-read");
    mkfifo(&dir.path("fifo"));
    let mut g = Guest::new();
    let fifo = g.s("fifo");
    let mut b = expect(1, SUCCESS, &format!("(call $open {fifo} (i32.const 0) (i64.const {FD_READ}) (i32.const 0))"));
    // One iovec of 16 bytes at 4096 (iovec at 128): blocks until a writer writes.
    b += "(i32.store (i32.const 128) (i32.const 4096)) (i32.store (i32.const 132) (i32.const 16))\n";
    b += "(call $proc_exit (i32.add (i32.const 100) (call $fd_read (i32.load (i32.const 0)) (i32.const 128) (i32.const 1) (i32.const 8))))\n";
    let mut c = RunConfig::default();
    preopen(&mut c, &dir.0, false);
    let m = load(&engine(), &g.wat(&b));
    let exit = within(Duration::from_secs(60), move || {
        let run = Run::start_background(&m, &c).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(run.try_wait().is_none(), "the read waits for a writer: {:?}", run.try_wait());
        run.cancel();
        run.wait()
    });
    assert_eq!(exit.kind, ExitKind::Cancelled, "{exit:?}");

    // A writer that comes later: its bytes, then end of file once it has gone.
    let mut g = Guest::new();
    let fifo = g.s("fifo");
    let mut b = expect(1, SUCCESS, &format!("(call $open {fifo} (i32.const 0) (i64.const {FD_READ}) (i32.const 0))"));
    b += "(i32.store (i32.const 128) (i32.const 4096)) (i32.store (i32.const 132) (i32.const 16))\n";
    b += &expect(2, SUCCESS, "(call $fd_read (i32.load (i32.const 0)) (i32.const 128) (i32.const 1) (i32.const 8))");
    b += "(local.set $n (i32.load (i32.const 8)))\n";
    b += &expect(3, SUCCESS, "(call $fd_read (i32.load (i32.const 0)) (i32.const 128) (i32.const 1) (i32.const 8))");
    b += "(call $proc_exit (i32.add (i32.mul (local.get $n) (i32.const 100)) (i32.load (i32.const 8))))\n";
    let mut c = RunConfig::default();
    preopen(&mut c, &dir.0, false);
    let m = load(&engine(), &g.wat(&b));
    let path = dir.path("fifo");
    let exit = within(Duration::from_secs(60), move || {
        let run = Run::start_background(&m, &c).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Waits (in this host thread) at most until the guest has opened its end.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all(b"hello").unwrap();
        run.wait()
    });
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 500), "{exit:?}");
}

/// Character devices in a preopen open and read as on the host (`/dev/zero` gives zeros,
/// `/dev/null` end of file), and writing under a read-only preopen is `perm`.
#[test]
fn character_devices_open_and_read() {
    let mut g = Guest::new();
    let (null, zero) = (g.s("null"), g.s("zero"));
    let mut b = String::new();
    b += "(i32.store (i32.const 128) (i32.const 4096)) (i32.store (i32.const 132) (i32.const 16))\n";
    b += "(i64.store (i32.const 4096) (i64.const -1))\n";
    // /dev/zero: 16 zero bytes; /dev/null: end of file; writing under a read-only /dev: perm.
    b += &expect(1, SUCCESS, &format!("(call $open {zero} (i32.const 0) (i64.const {FD_READ}) (i32.const 0))"));
    b += &expect(2, SUCCESS, "(call $fd_read (i32.load (i32.const 0)) (i32.const 128) (i32.const 1) (i32.const 8))");
    b += "(call $assert (i32.eq (i32.load (i32.const 8)) (i32.const 16)) (i32.const 3))\n";
    b += "(call $assert (i64.eqz (i64.load (i32.const 4096))) (i32.const 4))\n";
    b += &expect(5, SUCCESS, &format!("(call $open {null} (i32.const 0) (i64.const {FD_READ}) (i32.const 0))"));
    b += &expect(6, SUCCESS, "(call $fd_read (i32.load (i32.const 0)) (i32.const 128) (i32.const 1) (i32.const 8))");
    b += "(call $assert (i32.eqz (i32.load (i32.const 8))) (i32.const 7))\n";
    b += &expect(8, SUCCESS, &format!("(call $path_filestat_get (i32.const 3) (i32.const 0) {null} (i32.const 64))"));
    b += "(call $assert (i32.eq (i32.load8_u (i32.const 80)) (i32.const 2)) (i32.const 9))\n";
    b += &expect(10, PERM, &format!("(call $open {null} (i32.const 0) (i64.const {FD_WRITE}) (i32.const 0))"));
    let mut c = RunConfig::default();
    preopen(&mut c, Path::new("/dev"), true);
    assert_exit_0(&run_wat(&g.wat(&b), &c));
}

/// `max_fds` stops `path_open` with `mfile`, counting a directory listing's own host
/// descriptor, and the run leaves no host descriptor open. Counts the process's
/// descriptors, so it runs alone in a child process.
#[test]
fn the_descriptor_limit_stops_path_open_with_mfile_and_leaks_nothing() {
    if !isolated("the_descriptor_limit_stops_path_open_with_mfile_and_leaks_nothing") {
        return;
    }
    let dir = TempDir::new("limit");
    std::fs::write(dir.path("f.txt"), "f").unwrap();
    let mut g = Guest::new();
    let (f, new) = (g.s("f.txt"), g.s("new.txt"));
    // A readdir first (its cursor holds a host descriptor of its own), then open until
    // refused; exit with errno * 1000 + how many opened, after one more refused
    // attempt to create a file.
    let b = format!(
        r#"
    (call $expect (call $fd_readdir (i32.const 3) (i32.const 4096) (i32.const 40) (i64.const 0) (i32.const 8)) (i32.const 0) (i32.const 1))
    (block $full
      (loop $again
        (local.set $n (call $open {f} (i32.const 0) (i64.const {FD_READ}) (i32.const 0)))
        (br_if $full (local.get $n))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (call $expect (call $open {new} (i32.const {CREAT}) (i64.const {FD_WRITE}) (i32.const 0)) (i32.const {MFILE}) (i32.const 2))
    (call $proc_exit (i32.add (i32.mul (local.get $n) (i32.const 1000)) (local.get $i)))
"#
    );
    let mut c = RunConfig::default();
    c.limits.max_fds = 40;
    preopen(&mut c, &dir.0, false);
    let m = load(&engine(), &g.wat(&b));
    // Once to create what a first run creates for the process, then counted.
    run_watched(&m, &c);
    std::fs::remove_file(dir.path("new.txt")).ok();
    let before = open_fds();
    let exit = run_watched(&m, &c).0;
    // 40 in all: stdin, stdout, stderr, the preopen, its listing cursor (a second host
    // descriptor, which counts) and 35 files.
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, MFILE * 1000 + 35), "{exit:?}");
    assert!(!dir.path("new.txt").exists(), "a refused open creates nothing");
    // The host could still open files, and every descriptor of the run is closed.
    let probe = std::fs::File::open(dir.path("f.txt")).unwrap();
    drop(probe);
    assert_eq!(open_fds(), before, "descriptors left open by the run");
}

/// Builds `tests/guests/fs-ops` (once per test binary).
fn fs_ops_guest() -> &'static [u8] {
    static WASM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    WASM.get_or_init(|| std::fs::read(build_guest("tests/guests/fs-ops/Cargo.toml", "fs-ops", false)).unwrap())
}

/// What `tests/guests/fs-ops` prints (the same under Wasmtime 46's CLI).
const FS_OPS_OUTPUT: &str = r#"create_dir_all: is_dir=true
create_dir_all again: ok
create_dir existing: errno 20
read: hello, world
metadata: len=13 is_file=true is_dir=false
after append: hello, world
appended
seek+read: "world"
write to read-only handle: errno 8
after truncate: new
create_new existing: errno 20
read_dir many: 300 entries, first ("file-0000", 0), last ("file-0299", 10), 2367 bytes
read_dir many: names exact = true
rename: old=errno 44 new=ok
rename dir: ["b2:dir", "many:dir", "moved.txt:file"]
hard link: new
remove_file(dir): errno 31
remove_dir(file): errno 54
remove_dir(non-empty): errno 55
open missing: errno 44
open dir as file for writing: errno 31
read_dir of a file: errno 54
escape: errno 63
thread 0: (100, true)
thread 1: (100, true)
thread 2: (100, true)
thread 3: (100, true)
listing: ["a:dir"]
listing a: ["b2:dir", "hard.txt:file", "many:dir", "moved.txt:file"]
after remove_dir_all: []
"#;

/// A Rust `std::fs` program (`tests/guests/fs-ops`) does its file system work under a
/// preopen and prints what it prints under Wasmtime 46's CLI.
#[test]
fn a_rust_std_guest_does_file_system_work() {
    let dir = TempDir::new("fs-ops");
    let m = Module::new(&engine(), fs_ops_guest()).unwrap();
    let out = Capture::default();
    let err = Capture::default();
    let mut c = RunConfig::default();
    c.args = vec!["fs-ops".into(), "/work".into()];
    c.stdout = out.output();
    c.stderr = err.output();
    preopen(&mut c, &dir.0, false);
    let (exit, _) = run_watched(&m, &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "{exit:?}\nstderr: {}", err.text());
    assert_eq!(out.text(), FS_OPS_OUTPUT);
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
}

/// A path longer than `PATH_MAX` whose end would pass 4 GiB (found by the `wasi_calls`
/// fuzzer: wiggle panicked computing its last byte) is a bad pointer like any other: the
/// guest traps, for every call that takes a path, and the host is fine.
#[test]
fn a_long_path_whose_end_passes_4_gib_is_a_bad_pointer() {
    let dir = TempDir::new("wrap");
    let far = "(i32.const -4096) (i32.const 65536)";
    let calls = [
        format!("(call $path_open (i32.const 3) (i32.const 0) {far} (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0))"),
        format!("(call $path_create_directory (i32.const 3) {far})"),
        format!("(call $path_symlink {far} (i32.const 3) {far})"),
        format!("(call $path_unlink_file (i32.const 3) {far})"),
    ];
    for call in calls {
        let wat = Guest::new().wat(&format!("(drop {call})"));
        let mut c = RunConfig::default();
        preopen(&mut c, &dir.0, false);
        let exit = run_wat(&wat, &c);
        assert_eq!(exit.kind, ExitKind::Trap, "{call}: {exit:?}");
        assert!(!exit.message.as_deref().unwrap_or("").contains("panic"), "{call}: {exit:?}");
    }
}

/// Every way out of a preopen fails, and nothing outside is touched: `..`, an
/// absolute host path, a host symlink pointing out, a symlink the guest makes pointing out
/// (relative, and absolute), a symlink loop, a path longer than PATH_MAX, a NUL inside a
/// name, non-UTF-8 bytes, `.` chains climbing out.
#[test]
fn path_escapes_are_refused() {
    let root = temp_dir("attack-escape");
    let sandbox = root.join("sandbox");
    let outside = root.join("outside");
    std::fs::create_dir_all(&sandbox).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink("../outside", sandbox.join("out")).unwrap();
    std::os::unix::fs::symlink("loop", sandbox.join("loop")).unwrap();
    let abs = format!("{}/secret", outside.display());
    let long = "a/".repeat(3000);
    let paths: Vec<Vec<u8>> = vec![
        b"../outside/secret".to_vec(),
        abs.clone().into_bytes(),
        b"out/secret".to_vec(),
        b"loop".to_vec(),
        b"esc/secret".to_vec(),
        b"abs/secret".to_vec(),
        long.into_bytes(),
        b"sec\0ret".to_vec(),
        b"\xff\xfe".to_vec(),
        b"./.././outside/secret".to_vec(),
        b"out/../../outside/secret".to_vec(),
    ];
    let mut data = String::new();
    let mut calls = String::new();
    let mut at = 0x1000u32;
    let esc = at;
    data.push_str(&format!("(data (i32.const {at}) \"../outside\")"));
    at += 0x20;
    let esc_name = at;
    data.push_str(&format!("(data (i32.const {at}) \"esc\")"));
    at += 0x10;
    let abs_target = at;
    data.push_str(&format!("(data (i32.const {at}) \"{}\")", outside.display()));
    at += 0x200;
    let abs_name = at;
    data.push_str(&format!("(data (i32.const {at}) \"abs\")"));
    at += 0x10;
    for (i, p) in paths.iter().enumerate() {
        let escaped: String = p.iter().map(|b| format!("\\{b:02x}")).collect();
        data.push_str(&format!("(data (i32.const {at}) \"{escaped}\")"));
        for (oflags, rights) in [(0, FD_READ), (1 /* creat */, FD_READ | FD_WRITE)] {
            calls.push_str(&format!(
                "(if (i32.eqz (call $path_open (i32.const 3) (i32.const 1) (i32.const {at}) (i32.const {len}) (i32.const {oflags}) \
                 (i64.const {rights}) (i64.const 0) (i32.const 0) (i32.const 0x200))) (then (call $proc_exit (i32.const {code}))))\n",
                len = p.len(),
                code = i + 1,
            ));
        }
        calls.push_str(&format!(
            "(drop (call $path_create_directory (i32.const 3) (i32.const {at}) (i32.const {len})))\n",
            len = p.len()
        ));
        at += (p.len() as u32 + 16) & !15;
    }
    let body = format!(
        r#"
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start")
    ;; a relative symlink pointing out may be made (following it is what is refused)...
    (drop (call $path_symlink (i32.const {esc}) (i32.const 10) (i32.const 3) (i32.const {esc_name}) (i32.const 3)))
    ;; ...an absolute one may not
    (if (i32.eqz (call $path_symlink (i32.const {abs_target}) (i32.const {abs_len}) (i32.const 3) (i32.const {abs_name}) (i32.const 3)))
      (then (call $proc_exit (i32.const 99))))
    {calls}
    (call $proc_exit (i32.const 0)))"#,
        abs_len = outside.display().to_string().len(),
    );
    let wat = wasi_guest(2, &data, &body);
    let engine = engine();
    let module = load(&engine, &wat);
    let mut c = RunConfig::default();
    c.preopens.push(sandbox_preopen(&sandbox));
    let (exit, _) = run_watched(&module, &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0), "escape number {} worked: {exit:?}", exit.code);
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1, "nothing was created outside");
    assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret");
}
