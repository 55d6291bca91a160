//! Bad input from the host or the guest gets a clear error, an errno or a trap, and the
//! host carries on: malformed modules, missing entry points, non-UTF-8 host paths, and
//! hostile pointers and sizes passed to WASI calls.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::common::*;
use wasithreads::{ErrorKind, ExitKind, Module, Preopen, Run, RunConfig};

/// A module that cannot load gets an error that says why, whatever is wrong: no bytes,
/// not Wasm, a truncated binary, broken WAT, a shared memory without a maximum, a spawning
/// module whose memory is not shared, a mistyped `thread-spawn`, an import the library
/// does not provide or support, two shared memories. Each row: what is wrong, the module,
/// a phrase the error must contain, the error's kind.
#[test]
fn bad_modules_get_clear_errors() {
    let e = engine();
    let rows: &[(&str, &[u8], &str, ErrorKind)] = &[
        ("no bytes", b"", "empty", ErrorKind::BadModule),
        ("not Wasm", b"\xde\xad\xbe\xef garbage", "not a WebAssembly module", ErrorKind::BadModule),
        ("a truncated binary", b"\0asm\x01\0\0\0\x01\x05", "invalid WebAssembly module", ErrorKind::BadModule),
        ("broken WAT", b"(module (func", "not valid WAT", ErrorKind::BadModule),
        (
            "a shared memory without a maximum",
            br#"(module (import "env" "memory" (memory 1 shared)))"#,
            "invalid WebAssembly module", ErrorKind::BadModule,
        ),
        (
            "a spawning module whose memory is not shared",
            br#"(module (import "wasi" "thread-spawn" (func (param i32) (result i32))) (import "env" "memory" (memory 1 1)))"#,
            "has no shared memory", ErrorKind::Link,
        ),
        (
            "a mistyped thread-spawn",
            br#"(module (import "wasi" "thread-spawn" (func (param i64))) (import "env" "memory" (memory 1 1 shared)))"#,
            "must have type (i32) -> i32", ErrorKind::Link,
        ),
        (
            "a WASI function that does not exist",
            br#"(module (import "wasi_snapshot_preview1" "nope" (func)))"#,
            "not a WASI preview 1 function", ErrorKind::Link,
        ),
        ("a table import", br#"(module (import "env" "t" (table 1 funcref)))"#, "unsupported import `env::t`", ErrorKind::Link),
        (
            "two shared memories",
            br#"(module (import "a" "m" (memory 1 1 shared)) (import "b" "m" (memory 1 1 shared)))"#,
            "more than one shared memory", ErrorKind::BadModule,
        ),
    ];
    for (row, bytes, needle, kind) in rows {
        let err = Module::new(&e, bytes).err().unwrap_or_else(|| panic!("{row}: loaded"));
        let text = format!("{err:#}");
        assert!(text.contains(needle), "{row}: {text}");
        assert_eq!(ErrorKind::of(&err), *kind, "{row}: {text}");
    }
}

/// An unshared imported memory without a maximum (valid for a module without threads)
/// runs and grows.
#[test]
fn unshared_memory_imported_without_maximum_runs() {
    let e = engine();
    let m = load(
        &e,
        r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (import "env" "memory" (memory 1))
        (func (export "_start") (call $exit (i32.add (i32.const 10) (memory.grow (i32.const 3))))))"#,
    );
    let (exit, _) = run_watched(&m, &RunConfig::default());
    assert_eq!(exit.code, 11, "grew from 1 page");
}

/// A module without `_start` (a reactor) loads, and starting it is an error saying there
/// is no `_start`; a `_start` of the wrong type is an error saying which type it needs.
#[test]
fn missing_start_is_an_error_and_reactors_load() {
    let e = engine();
    let m = load(&e, r#"(module (memory (export "memory") 1))"#);
    let err = format!("{:#}", Run::start(&m, &RunConfig::default()).err().unwrap());
    assert!(err.contains("no `_start` export"), "{err}");
    let m = load(&e, r#"(module (func (export "_start") (param i32)))"#);
    let err = format!("{:#}", Run::start(&m, &RunConfig::default()).err().unwrap());
    assert!(err.contains("`_start` is not a function of type () -> ()"), "{err}");
}

/// Host paths that are not UTF-8 work as preopened directories: Linux paths are bytes.
#[test]
fn non_utf8_host_paths_work() {
    let e = engine();
    let base = temp_dir("non-utf8");
    let dir = base.join(OsStr::from_bytes(b"dir-\xff\xfe"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("hello.txt"), "hi").unwrap();
    let m = Module::new(&e, rust_guest()).unwrap();
    let out = Capture::default();
    let mut c = rust_config(&["fs", "read:/d/hello.txt"]);
    c.stdout = out.output();
    c.preopens.push(Preopen { host: dir, guest: "/d".into(), read_only: true });
    run_watched(&m, &c);
    assert_eq!(out.text(), "ok read:/d/hello.txt\n");
}

/// Hostile pointers and sizes end in an errno or a trap (a guest pointer outside
/// memory is a trap, as in Wasmtime 48), never a crash or a hang: poll_oneoff with 2^20
/// subscriptions running off the end of memory, with `u32::MAX` of them, with a misaligned
/// and an overlapping events array; iovec arrays outside memory, of 1025 entries, and of
/// 1024 × 16 MiB (a short write of 16 MiB); random_get of 4 GiB into 16 MiB; args_get at
/// the end of memory; fd_readdir with tiny buffers and odd cookies; sock calls on
/// non-sockets; fd_renumber far out; a path length past the memory.
#[test]
fn hostile_pointers_and_sizes_get_errnos_or_traps() {
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Want {
        Code(i32),
        Trap,
        Either,
    }
    use Want::*;
    const MIB16: u32 = 16 << 20;
    let cases: &[(&str, Want)] = &[
        ("(call $poll (i32.const 0xfffff0) (i32.const 0) (i32.const 0x100000) (i32.const 0x460))", Trap),
        ("(call $poll (i32.const 0x400) (i32.const 0x440) (i32.const -1) (i32.const 0x460))", Code(48)),
        ("(call $poll (i32.const 0x400) (i32.const 0x440) (i32.const 0) (i32.const 0x460))", Code(28)),
        ("(call $poll (i32.const 0x400) (i32.const 0x441) (i32.const 1) (i32.const 0x460))", Either),
        ("(call $poll (i32.const 0x400) (i32.const 0x400) (i32.const 1) (i32.const 0x460))", Code(0)),
        ("(call $poll (i32.const 0x400) (i32.const 0x440) (i32.const 1) (i32.const 0xfffffffe))", Trap),
        ("(call $poll (i32.const 0x400) (i32.const 0xfffff0) (i32.const 1) (i32.const 0x460))", Trap),
        ("(call $fd_write (i32.const 1) (i32.const 0xfffffc) (i32.const 1024) (i32.const 0x460))", Trap),
        ("(call $fd_write (i32.const 1) (i32.const 0x800) (i32.const 1025) (i32.const 0x460))", Code(28)),
        ("(i32.add (call $fd_write (i32.const 1) (i32.const 0x2000) (i32.const 1024) (i32.const 0x460)) \
          (i32.sub (i32.load (i32.const 0x460)) (i32.const 0x1000000)))", Code(0)),
        ("(call $fd_read (i32.const 0) (i32.const 0x2000) (i32.const 1024) (i32.const 0xfffffffc))", Either),
        ("(call $random (i32.const 0) (i32.const -1))", Trap),
        ("(call $args_get (i32.const 0xfffffe) (i32.const 0))", Trap),
        ("(call $args_get (i32.const 0) (i32.const 0xffffff))", Trap),
        ("(call $args_get (i32.const -4) (i32.const -1))", Trap),
        ("(call $fd_readdir (i32.const 3) (i32.const 0x3000) (i32.const 0) (i64.const 0) (i32.const 0x460))", Code(0)),
        ("(call $fd_readdir (i32.const 3) (i32.const 0x3000) (i32.const 1) (i64.const 0) (i32.const 0x460))", Code(0)),
        ("(i32.add (call $fd_readdir (i32.const 3) (i32.const 0x3000) (i32.const 100) (i64.const -1) (i32.const 0x460)) \
          (i32.load (i32.const 0x460)))", Code(0)),
        ("(call $fd_readdir (i32.const 3) (i32.const 0x3000) (i32.const 25) (i64.const 2) (i32.const 0x460))", Code(0)),
        ("(call $fd_readdir (i32.const 3) (i32.const 0xffff00) (i32.const -1) (i64.const 0) (i32.const 0x460))", Either),
        ("(call $sock_recv (i32.const 1) (i32.const 0x800) (i32.const 1) (i32.const 0) (i32.const 0x460) (i32.const 0x464))", Code(57)),
        ("(call $sock_accept (i32.const 3) (i32.const 0) (i32.const 0x460))", Code(57)),
        ("(call $fd_renumber (i32.const 3) (i32.const 100000))", Code(8)),
        ("(call $fd_renumber (i32.const 0) (i32.const 0))", Code(0)),
        ("(call $path_open (i32.const 3) (i32.const 0) (i32.const 0xfffff0) (i32.const -1) (i32.const 0) \
          (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0x200))", Trap),
    ];
    let dir = temp_dir("attack-hostile");
    std::fs::write(dir.join("f"), b"x").unwrap();
    let engine = engine();
    for (call, want) in cases {
        let body = format!(
            r#"
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "_start")
    (local $k i32)
    ;; a clock subscription due now at 0x400
    (i64.store (i32.const 0x400) (i64.const 5))
    (i32.store8 (i32.const 0x408) (i32.const 0))
    (i32.store (i32.const 0x410) (i32.const 1))
    (i64.store (i32.const 0x418) (i64.const 0))
    ;; 1024 iovecs of 16 MiB each at 0x2000
    (loop $iov
      (i32.store (i32.add (i32.const 0x2000) (i32.mul (local.get $k) (i32.const 8))) (i32.const 0))
      (i32.store offset=4 (i32.add (i32.const 0x2000) (i32.mul (local.get $k) (i32.const 8))) (i32.const {MIB16}))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $iov (i32.lt_u (local.get $k) (i32.const 1024))))
    (call $proc_exit {call}))"#
        );
        let module = load(&engine, &wasi_guest(256, "", &body));
        let mut c = RunConfig::default();
        c.preopens.push(sandbox_preopen(&dir));
        c.stdout = wasithreads::Output::Null;
        c.stdin = wasithreads::Input::Null;
        let (exit, _) = run_watched(&module, &c);
        let got = match exit.kind {
            ExitKind::Code => Code(exit.code),
            ExitKind::Trap => Trap,
            _ => panic!("{call}: {exit:?}"),
        };
        assert!(got == *want || (*want == Either), "{call}: want {want:?}, got {exit:?}");
    }
}

/// The errors of the Rust API that are not about the bytes have their kind too, and the
/// I/O ones the OS error: the kinds the C API's `wt_error_kind` reports.
#[test]
fn errors_of_the_rust_api_have_their_kind() {
    let e = engine();
    let dir = temp_dir("rust-error-kinds");
    let kind_and_errno = |r: anyhow::Result<()>| {
        let err = r.expect_err("an error");
        (ErrorKind::of(&err), wasithreads::os_errno(&err), format!("{err:#}"))
    };
    let (kind, errno, text) = kind_and_errno(Module::from_file(&e, &dir.join("missing.wasm")).map(drop));
    assert_eq!((kind, errno), (ErrorKind::Io, Some(libc::ENOENT)), "{text}");
    let (kind, errno, text) = kind_and_errno(Module::from_file(&e, &dir).map(drop));
    assert_eq!((kind, errno), (ErrorKind::Io, Some(libc::EISDIR)), "{text}");
    let config = wasithreads::EngineConfig { opt_level: 9, ..Default::default() };
    let (kind, errno, text) = kind_and_errno(wasithreads::Engine::new(&config).map(drop));
    assert_eq!((kind, errno), (ErrorKind::Misuse, None), "{text}");
    // SAFETY: the bytes are only checked for the header and refused, never run.
    let (kind, _, text) = kind_and_errno(unsafe { Module::deserialize(&e, b"junk") }.map(drop));
    assert_eq!(kind, ErrorKind::BadModule, "{text}");

    let hello = load(&e, r#"(module (memory (export "memory") 1) (func (export "_start")))"#);
    let start = |config: &RunConfig| Run::start(&hello, config).map(drop);
    let mut config = RunConfig::default();
    config.limits.max_fds = 2;
    let (kind, errno, text) = kind_and_errno(start(&config));
    assert_eq!((kind, errno), (ErrorKind::Limit, None), "{text}");
    let mut config = RunConfig::default();
    config.preopens.push(Preopen { host: dir.join("none"), guest: "/".into(), read_only: false });
    let (kind, errno, text) = kind_and_errno(start(&config));
    assert_eq!((kind, errno), (ErrorKind::Io, Some(libc::ENOENT)), "{text}");
    let mut config = RunConfig::default();
    config.coredump_path = Some("/".into());
    let (kind, _, text) = kind_and_errno(start(&config));
    assert_eq!(kind, ErrorKind::Misuse, "{text}");
    let no_start = load(&e, r#"(module (memory (export "memory") 1))"#);
    let (kind, _, text) = kind_and_errno(Run::start(&no_start, &RunConfig::default()).map(drop));
    assert_eq!(kind, ErrorKind::Link, "{text}");
    let shared = load(&e, r#"(module (import "env" "memory" (memory 2 10 shared)) (func (export "_start")))"#);
    let mut config = RunConfig::default();
    config.limits.max_memory = Some(65536);
    let (kind, _, text) = kind_and_errno(Run::start(&shared, &config).map(drop));
    assert_eq!(kind, ErrorKind::Limit, "{text}");
}
