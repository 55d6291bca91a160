//! The bad-input table: each bad input gets a clear error or the right exit kind, and the
//! host carries on (every test here runs in the test process itself).

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use common::*;
use wasithreads::config::Preopen;
use wasithreads::{ExitKind, Module, Run, RunConfig};

fn load_err(wat: &str) -> String {
    format!("{:#}", Module::new(&engine(), wat.as_bytes()).err().expect("must not load"))
}

#[test]
fn bad_modules_get_clear_errors() {
    let e = engine();
    for (bytes, needle) in [
        (&b""[..], "empty"),
        (&b"\xde\xad\xbe\xef garbage"[..], "not a WebAssembly module"),
        (&b"\0asm\x01\0\0\0\x01\x05"[..], "invalid WebAssembly module"),
        (&b"(module (func"[..], "not valid WAT"),
    ] {
        let err = format!("{:#}", Module::new(&e, bytes).err().unwrap());
        assert!(err.contains(needle), "{bytes:?}: {err}");
    }
    assert!(load_err(r#"(module (import "env" "memory" (memory 1 shared)))"#).contains("invalid WebAssembly module"));
    assert!(load_err(r#"(module (import "wasi" "thread-spawn" (func (param i32) (result i32))) (import "env" "memory" (memory 1 1)))"#)
        .contains("has no shared memory"));
    assert!(load_err(
        r#"(module (import "wasi" "thread-spawn" (func (param i64))) (import "env" "memory" (memory 1 1 shared)))"#
    )
    .contains("must have type (i32) -> i32"));
    assert!(load_err(r#"(module (import "env" "f" (func)))"#).contains("unknown import `env::f`"));
    assert!(load_err(r#"(module (import "env" "t" (table 1 funcref)))"#).contains("unsupported import `env::t`"));
    assert!(load_err(r#"(module (import "a" "m" (memory 1 1 shared)) (import "b" "m" (memory 1 1 shared)))"#)
        .contains("more than one shared memory"));
}

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

#[test]
fn changing_the_config_after_start_does_not_touch_the_run() {
    let e = engine();
    let m = load(
        &e,
        &guest(&format!(
            "{} (call $sleep (i64.const 30000000)) (call $proc_exit (i32.const 6))",
            spawn_all(&[WAIT_FOREVER])
        )),
    );
    let exits = Exits::default();
    let mut c = RunConfig::default();
    exits.install(&mut c);
    let run = Run::start_background(&m, &c).unwrap();
    c.timeout = Some(std::time::Duration::from_millis(1));
    c.limits.max_threads = 0;
    c.hooks.on_thread_exit = None;
    c.args.push("changed".into());
    drop(c);
    let exit = run.wait();
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 6), "no timeout was applied");
    assert_eq!(exits.sorted().len(), 2, "the callback given at start still ran");
}

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

#[test]
fn infinite_loop_without_timeout_is_ended_by_cancel() {
    let e = engine();
    let m = load(&e, "(module (func (export \"_start\") (loop $l (br $l))))");
    let run = Run::start_background(&m, &RunConfig::default()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(run.try_wait().is_none());
    run.cancel();
    assert_eq!(run.wait().kind, ExitKind::Cancelled);
}

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

/// Found by the run_smith fuzz target: a start function (the wasm `start` section) that
/// never returns used to run on the host's thread inside `Run::start`, out of reach of
/// timeout and cancel.
#[test]
fn start_function_that_never_returns_is_stopped() {
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
}
