//! Configuring and watching a run from the host through the Rust API: the environment,
//! preopened directories, serialized modules and the module cache, engine settings, the
//! thread callbacks, and a config changed after the start.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use wasithreads::config::Preopen;
use wasithreads::io::Output;
use wasithreads::{Engine, EngineConfig, ExitKind, Module, Run, RunConfig};

/// The guest's environment is empty unless the host gives variables (sorted as given) or
/// asks to inherit its own: a guest must not see the host's environment by default.
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

/// Preopened directories confine a real program's file system calls: reads and writes
/// inside work, symlinks and absolute paths out are refused, a read-only preopen refuses
/// every change, and without a preopen there is no file system at all.
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

/// Serialized modules deserialize and run, the rewritten waits included, and bytes that
/// are not a serialized module are refused with an error (not used).
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

/// `Module::from_file` loads WAT at each optimisation level and names a missing file,
/// `Module::validate` gives the reason a module cannot run, and a bad engine setting is
/// refused.
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

/// The thread-start callback runs once per thread, before that thread's exit callback,
/// both on the guest thread itself (hosts use them for per-thread state), never on the
/// host's thread.
#[test]
fn thread_start_callback_runs_once_per_thread_before_its_exit_callback() {
    let e = engine();
    let m = load(&e, &guest(&format!("{} (call $proc_exit (i32.const 0))", spawn_all(&[PRINT, WAIT_FOREVER, SPIN]))));
    // (tid, event, OS thread the callback ran on)
    type Events = Vec<(i32, &'static str, std::thread::ThreadId)>;
    let events: Arc<Mutex<Events>> = Arc::default();
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

/// A run keeps the config it started with: changing the host's `RunConfig` afterwards
/// does not reach the running guest.
#[test]
fn changing_the_config_after_start_does_not_touch_the_run() {
    // Bounded: a deadlock fails this test instead of hanging the suite.
    within(Duration::from_secs(120), || {
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
    });
}
