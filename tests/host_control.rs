//! Host control (issue 3) through the Rust core: background runs, cancel, limits, stdio,
//! environment, directories, module cache, callbacks.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use wasithreads::config::Preopen;
use wasithreads::io::{Input, Output};
use wasithreads::{Engine, EngineConfig, ExitKind, Module, Run, RunConfig, RunExit};

/// Waits (bounded) until `f` holds.
fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..6000 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn cancel_stops_threads_in_every_blocked_state() {
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
}

#[test]
fn cancel_racing_natural_exit_gives_exactly_one_result() {
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
}

#[test]
fn dropping_a_running_run_cancels_and_joins_it() {
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
}

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

/// A guest whose 8 threads each write a 1000-byte block of their own letter 50 times.
fn writers_guest() -> String {
    format!(
        r#"(module
        (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
        (import "env" "memory" (memory 2 2 shared))
        (func (export "wasi_thread_start") (param $tid i32) (param $n i32)
          (local $i i32) (local $base i32)
          (local.set $base (i32.add (i32.const 4096) (i32.mul (local.get $n) (i32.const 1024))))
          (memory.fill (local.get $base) (i32.add (i32.const 65) (local.get $n)) (i32.const 1000))
          ;; iovec for this thread at 16 * n
          (i32.store (i32.mul (local.get $n) (i32.const 16)) (local.get $base))
          (i32.store offset=4 (i32.mul (local.get $n) (i32.const 16)) (i32.const 1000))
          (loop $again
            (drop (call $write (i32.const 1) (i32.mul (local.get $n) (i32.const 16)) (i32.const 1)
                               (i32.add (i32.const 8) (i32.mul (local.get $n) (i32.const 16)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $again (i32.lt_u (local.get $i) (i32.const 50))))
          (drop (i32.atomic.rmw.add (i32.const 2048) (i32.const 1)))
          (drop (memory.atomic.notify (i32.const 2048) (i32.const 1))))
        (func (export "_start") (local $n i32) (local $done i32)
          (loop $s (drop (call $spawn (local.get $n)))
            (local.set $n (i32.add (local.get $n) (i32.const 1)))
            (br_if $s (i32.lt_u (local.get $n) (i32.const 8))))
          (loop $join
            (local.set $done (i32.atomic.load (i32.const 2048)))
            (if (i32.lt_u (local.get $done) (i32.const 8)) (then
              (drop (memory.atomic.wait32 (i32.const 2048) (local.get $done) (i64.const -1)))
              (br $join))))))"#
    )
}

#[test]
fn capture_from_eight_threads_loses_nothing_and_never_interleaves() {
    let e = engine();
    let m = load(&e, &writers_guest());
    let out = Capture::default();
    let mut c = RunConfig::default();
    c.stdout = out.output();
    let (exit, _) = run_watched(&m, &c);
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0));
    let chunks = out.0.lock().unwrap();
    assert_eq!(chunks.len(), 400, "one callback per fd_write");
    let mut per_tid = std::collections::HashMap::new();
    for (tid, data) in chunks.iter() {
        assert_eq!(data.len(), 1000);
        assert!(data.iter().all(|b| *b == data[0]), "one fd_write's bytes arrive whole");
        // The tid that wrote is the spawned thread for that letter (thread n has tid n + 1).
        assert_eq!(*tid, (data[0] - b'A') as i32 + 1);
        *per_tid.entry(*tid).or_insert(0) += 1;
    }
    assert_eq!(per_tid.len(), 8);
    assert!(per_tid.values().all(|n| *n == 50));
}

#[test]
fn stdout_to_a_file_and_to_null() {
    let e = engine();
    let m = load(&e, &writers_guest());
    let dir = temp_dir("stdout-file");
    let mut c = RunConfig::default();
    c.stdout = Output::File(Arc::new(std::fs::File::create(dir.join("out")).unwrap()));
    run_watched(&m, &c);
    let bytes = std::fs::read(dir.join("out")).unwrap();
    assert_eq!(bytes.len(), 400 * 1000);
    for chunk in bytes.chunks(1000) {
        assert!(chunk.iter().all(|b| *b == chunk[0]));
    }
    c.stdout = Output::Null;
    let (exit, _) = run_watched(&m, &c);
    assert_eq!(exit.code, 0, "writes to null succeed");
}

#[test]
fn stdin_from_bytes_each_run_from_the_start() {
    let e = engine();
    let m = Module::new(&e, rust_guest()).unwrap();
    let mut c = rust_config(&["echo"]);
    let text: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    c.stdin = Input::Bytes(text.clone().into());
    for _ in 0..2 {
        let out = Capture::default();
        c.stdout = out.output();
        let (exit, _) = run_watched(&m, &c);
        assert_eq!(exit.code, 0);
        assert_eq!(out.text().as_bytes(), &text[..]);
    }
    c.stdin = Input::Null;
    let out = Capture::default();
    c.stdout = out.output();
    run_watched(&m, &c);
    assert_eq!(out.text(), "");
}

#[test]
fn environment_is_empty_unless_given() {
    let e = engine();
    let m = Module::new(&e, rust_guest()).unwrap();
    let out = Capture::default();
    let mut c = rust_config(&["env"]);
    c.stdout = out.output();
    run_watched(&m, &c);
    assert_eq!(out.text(), "");

    let out = Capture::default();
    c.stdout = out.output();
    c.env = vec![("B".into(), "2".into()), ("A".into(), "1".into())];
    run_watched(&m, &c);
    assert_eq!(out.text(), "A=1\nB=2\n");

    // Any variable this process has (changing the environment of a threaded test process
    // is unsound, so none is set for the test).
    let (key, value) = std::env::vars().next().expect("the test process has an environment");
    let out = Capture::default();
    c.stdout = out.output();
    c.inherit_env = true;
    run_watched(&m, &c);
    assert!(out.text().contains(&format!("{key}={value}\n")), "{}", out.text());
    assert!(out.text().contains("A=1\n"));
}

#[test]
fn preopens_confine_the_guest() {
    let e = engine();
    let m = Module::new(&e, rust_guest()).unwrap();
    let root = temp_dir("sandbox");
    let inside = root.join("inside");
    std::fs::create_dir(&inside).unwrap();
    std::fs::write(inside.join("hello.txt"), "hi").unwrap();
    std::fs::write(root.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(root.join("secret.txt"), inside.join("link-out")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", inside.join("rel-link-out")).unwrap();

    let run_fs = |read_only: bool, ops: &[&str]| {
        let out = Capture::default();
        let mut args = vec!["fs"];
        args.extend_from_slice(ops);
        let mut c = rust_config(&args);
        c.stdout = out.output();
        c.preopens.push(Preopen { host: inside.clone(), guest: "/data".into(), read_only });
        let (exit, _) = run_watched(&m, &c);
        assert_eq!(exit.code, 0, "{exit:?}");
        out.text()
    };
    let text = run_fs(
        false,
        &[
            "read:/data/hello.txt",
            "write:/data/new.txt",
            "read:/data/../secret.txt",
            "read:/secret.txt",
            "read:/data/link-out",
            "read:/data/rel-link-out",
            &format!("read:{}", root.join("secret.txt").display()),
        ],
    );
    let expected = format!(
        "ok read:/data/hello.txt\nok write:/data/new.txt\nerr read:/data/../secret.txt\nerr read:/secret.txt\n\
         err read:/data/link-out\nerr read:/data/rel-link-out\nerr read:{}\n",
        root.join("secret.txt").display()
    );
    assert_eq!(text, expected);
    assert_eq!(std::fs::read_to_string(inside.join("new.txt")).unwrap(), "x");

    let text =
        run_fs(true, &["read:/data/hello.txt", "write:/data/other.txt", "mkdir:/data/d", "remove:/data/hello.txt"]);
    assert_eq!(
        text,
        "ok read:/data/hello.txt\nerr write:/data/other.txt\nerr mkdir:/data/d\nerr remove:/data/hello.txt\n"
    );
    assert!(!inside.join("other.txt").exists() && inside.join("hello.txt").exists());

    // No preopen, no file system at all.
    let out = Capture::default();
    let mut c = rust_config(&["fs", "read:/data/hello.txt", "read:hello.txt"]);
    c.stdout = out.output();
    run_watched(&m, &c);
    assert_eq!(out.text(), "err read:/data/hello.txt\nerr read:hello.txt\n");
}

#[test]
fn serialized_modules_load_and_run() {
    let e = engine();
    let m = Module::new(&e, rust_guest()).unwrap();
    let bytes = m.serialize().unwrap();
    // SAFETY: the bytes were just produced by `serialize` in this process.
    let back = unsafe { Module::deserialize(&e, &bytes) }.unwrap();
    let (exit, _) = run_watched(&back, &rust_config(&["sum"]));
    assert_eq!((exit.kind, exit.code), (ExitKind::Code, 0));
    // A module with rewritten waits keeps its wait functions through the cache.
    let g =
        load(&e, &guest(&format!("{} (call $proc_exit (i32.const 4))", spawn_all(&[WAIT_FOREVER, WAIT64_FOREVER]))));
    // SAFETY: as above.
    let back = unsafe { Module::deserialize(&e, &g.serialize().unwrap()) }.unwrap();
    let (exit, _) = run_watched(&back, &RunConfig::default());
    assert_eq!(exit.code, 4);
    // Bytes from elsewhere are refused with an error.
    // SAFETY: wasmtime checks the header before using anything; these bytes fail that check.
    let err = unsafe { Module::deserialize(&e, b"\0asm\x01\0\0\0") }.err().unwrap();
    assert!(format!("{err:#}").contains("not a module serialized"), "{err:#}");
}

#[test]
fn load_file_validate_and_engine_settings() {
    let dir = temp_dir("load-file");
    let path = dir.join("g.wat");
    std::fs::write(&path, guest("(call $proc_exit (i32.const 8))")).unwrap();
    for opt_level in [0, 2] {
        let e =
            Engine::new(&EngineConfig { opt_level, interrupt_tick: Duration::from_micros(100), ..Default::default() })
                .unwrap();
        let m = Module::from_file(&e, &path).unwrap();
        assert_eq!(run_watched(&m, &RunConfig::default()).0.code, 8);
    }
    let e = engine();
    let err = Module::from_file(&e, &dir.join("missing.wasm")).err().unwrap();
    assert!(format!("{err:#}").contains("missing.wasm"));
    let err =
        Module::validate(&e, br#"(module (import "wasi" "thread-spawn" (func (param i32) (result i32))) (memory 1))"#)
            .unwrap_err();
    assert!(format!("{err:#}").contains("has no shared memory"), "{err:#}");
    assert!(Engine::new(&EngineConfig { opt_level: 7, ..Default::default() }).is_err());
}

#[test]
fn thread_start_callback_runs_once_per_thread_before_its_exit_callback() {
    let e = engine();
    let m = load(&e, &guest(&format!("{} (call $proc_exit (i32.const 0))", spawn_all(&[PRINT, WAIT_FOREVER, SPIN]))));
    // (tid, event, OS thread the callback ran on)
    let events: Arc<Mutex<Vec<(i32, &'static str, std::thread::ThreadId)>>> = Arc::default();
    let mut c = RunConfig::default();
    c.stdout = Output::Null;
    let (s, x) = (events.clone(), events.clone());
    c.hooks.on_thread_start =
        Some(Arc::new(move |tid| s.lock().unwrap().push((tid, "start", std::thread::current().id()))));
    c.hooks.on_thread_exit =
        Some(Arc::new(move |tid, _| x.lock().unwrap().push((tid, "exit", std::thread::current().id()))));
    run_watched(&m, &c);
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 8, "{ev:?}");
    for tid in 0..4 {
        let start = ev.iter().position(|e| e.0 == tid && e.1 == "start").unwrap();
        let exit = ev.iter().position(|e| e.0 == tid && e.1 == "exit").unwrap();
        assert!(start < exit, "{ev:?}");
        // Both ran on the guest thread itself, never on the host's.
        assert_eq!(ev[start].2, ev[exit].2);
        assert_ne!(ev[start].2, std::thread::current().id());
    }
}

#[test]
fn an_output_callback_may_cancel_its_own_run() {
    let e = engine();
    // Main prints every 10 ms forever while a thread waits forever: only the cancel from
    // the output callback (running on the printing guest thread) can end this run.
    let m = load(
        &e,
        &guest(&format!(
            "{} (loop $l (call $print (i32.const 1000) (i32.const 18)) (call $sleep (i64.const 10000000)) (br $l))",
            spawn_all(&[WAIT_FOREVER])
        )),
    );
    // A weak reference: the run owns the callback, which must not own the run.
    let slot: Arc<std::sync::OnceLock<std::sync::Weak<Run>>> = Arc::default();
    let prints = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut c = RunConfig::default();
    let (s, p) = (slot.clone(), prints.clone());
    c.stdout = Output::Callback(Arc::new(move |_tid, _bytes| {
        p.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(run) = s.get().and_then(std::sync::Weak::upgrade) {
            run.cancel();
        }
    }));
    let exit = within(Duration::from_secs(60), move || {
        let run = Arc::new(Run::start_background(&m, &c).unwrap());
        assert!(slot.set(Arc::downgrade(&run)).is_ok());
        run.wait()
    });
    assert_eq!(exit.kind, ExitKind::Cancelled);
    assert!(prints.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}
