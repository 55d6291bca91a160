//! Shared helpers for the integration tests: guest modules and a watchdog.
#![allow(dead_code)]

pub mod c;
pub mod child;
pub mod fd_guest;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasithreads::{Engine, EngineConfig, Module, Run, RunConfig, RunExit, ThreadExit};

/// Thread behaviours understood by `guest.wat` (the spawn argument).
pub const SPIN: i32 = 0;
pub const WAIT_FOREVER: i32 = 1;
pub const SLEEP_HOUR: i32 = 2;
pub const READ_STDIN: i32 = 3;
pub const TRAP: i32 = 4;
pub const EXIT_33: i32 = 5;
pub const PRINT: i32 = 6;
pub const WAIT64_FOREVER: i32 = 7;

/// The test guest with `main_body` as the body of `_start` (locals `$i`, `$r`).
pub fn guest(main_body: &str) -> String {
    include_str!("guest.wat").replace("MAIN_BODY", main_body)
}

/// A module whose `_start` spawns `threads` threads; all of them and `_start` spin in a
/// loop. `memory` is its memory declaration (WAT).
pub fn spinners(memory: &str, threads: u32) -> String {
    let spawns = "(drop (call $spawn (i32.const 0)))".repeat(threads as usize);
    format!(
        r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  {memory}
  (func $spin (loop $l (br $l)))
  (func (export "wasi_thread_start") (param i32 i32) (call $spin))
  (func (export "_start") {spawns} (call $spin)))"#
    )
}

/// WAT that spawns one thread per mode and waits until all have started.
pub fn spawn_all(modes: &[i32]) -> String {
    let mut s = String::new();
    for m in modes {
        s.push_str(&format!("(drop (call $spawn (i32.const {m})))\n"));
    }
    s.push_str(&format!("(call $wait_started (i32.const {}))\n", modes.len()));
    s
}

pub fn engine() -> Engine {
    Engine::new(&EngineConfig::default()).expect("engine")
}

pub fn load(engine: &Engine, wat: &str) -> Module {
    Module::new(engine, wat.as_bytes()).expect("module loads")
}

/// Every thread-exit callback of a run, in call order.
#[derive(Clone, Default)]
pub struct Exits(pub Arc<Mutex<Vec<(i32, ThreadExit)>>>);

impl Exits {
    pub fn install(&self, config: &mut RunConfig) {
        let log = self.0.clone();
        config.hooks.on_thread_exit = Some(Arc::new(move |tid, how| log.lock().unwrap().push((tid, how.clone()))));
    }
    pub fn sorted(&self) -> Vec<(i32, ThreadExit)> {
        let mut v = self.0.lock().unwrap().clone();
        v.sort_by_key(|(tid, _)| *tid);
        v
    }
}

/// Starts `module`, lets it run for `after`, cancels it; returns the exit, the thread
/// exits and how long the cancel took (failing the test after 60 s instead of hanging).
pub fn cancel_module(
    module: &Module,
    mut config: RunConfig,
    after: Duration,
) -> (RunExit, Vec<(i32, ThreadExit)>, Duration) {
    let module = module.clone();
    within(Duration::from_secs(60), move || {
        let exits = Exits::default();
        exits.install(&mut config);
        let run = Run::start(&module, &config).expect("run starts");
        std::thread::sleep(after);
        let t = Instant::now();
        run.cancel();
        let exit = run.wait();
        (exit, exits.sorted(), t.elapsed())
    })
}

/// Runs to the end, failing the test (instead of hanging it) if the run is not over
/// within 60 s: a liveness check, not a speed check.
pub fn run_watched(module: &Module, config: &RunConfig) -> (RunExit, Duration) {
    let (module, config) = (module.clone(), config.clone());
    within(Duration::from_secs(60), move || {
        let run = Run::start(&module, &config).expect("run starts");
        let start = Instant::now();
        let exit = run.wait();
        (exit, start.elapsed())
    })
}

/// Runs `f` on a thread of its own and fails the test if it has not finished within
/// `limit`: a deadlock then fails the test (with the others still reported) instead of
/// hanging the whole test run.
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            t.join().unwrap();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => std::panic::resume_unwind(t.join().unwrap_err()),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("not finished within {limit:?}: deadlock?"),
    }
}

/// Number of OS threads of this process.
pub fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Builds `tests/guests/rust-threads` for wasm32-wasip1-threads (once per test binary)
/// and returns the module's bytes.
pub fn rust_guest() -> &'static [u8] {
    static WASM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    WASM.get_or_init(|| {
        std::fs::read(build_guest("tests/guests/rust-threads/Cargo.toml", "rust-threads", false)).unwrap()
    })
}

/// A fresh empty directory under the target dir.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(format!(
        "{}/target/test-tmp/{name}-{}",
        env!("CARGO_MANIFEST_DIR"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Collects what a guest writes to one stream, one entry per `fd_write`.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<(i32, Vec<u8>)>>>);

impl Capture {
    pub fn output(&self) -> wasithreads::io::Output {
        let log = self.0.clone();
        wasithreads::io::Output::Callback(Arc::new(move |tid, data| log.lock().unwrap().push((tid, data.to_vec()))))
    }
    pub fn text(&self) -> String {
        let chunks = self.0.lock().unwrap();
        String::from_utf8(chunks.iter().flat_map(|(_, d)| d.clone()).collect()).unwrap()
    }
}

/// Busy-waits for `d` (yielding would hand the core to spinning guests for a whole slice).
pub fn spin_for(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// A config whose argv is `rust-threads ARGS...`, for the Rust guest.
pub fn rust_config(args: &[&str]) -> RunConfig {
    let mut c = RunConfig::default();
    c.args = std::iter::once("rust-threads").chain(args.iter().copied()).map(String::from).collect();
    c
}

/// Builds a guest crate under tests/ or benches/ for wasm32-wasip1-threads (and, with
/// `native`, for the host too) into target/guests; returns the path of the artifact.
pub fn build_guest(manifest: &str, name: &str, native: bool) -> std::path::PathBuf {
    build_guest_with(manifest, name, native, &[])
}

/// [`build_guest`] with extra environment variables for cargo (e.g. a linker).
pub fn build_guest_with(manifest: &str, name: &str, native: bool, envs: &[(&str, &str)]) -> std::path::PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let target_dir = format!("{root}/target/guests");
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "--release", "--quiet", "--manifest-path"]).arg(format!("{root}/{manifest}"));
    if !native {
        cmd.args(["--target", "wasm32-wasip1-threads"]);
    }
    // Flags meant for the library (e.g. scripts/asan.sh's sanitizer) must not reach guests.
    cmd.env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd.envs(envs.iter().copied());
    let status = cmd.env("CARGO_TARGET_DIR", &target_dir).status().expect("running cargo for a guest");
    assert!(status.success(), "building {manifest} failed (is the wasm32-wasip1-threads target installed?)");
    if native {
        format!("{target_dir}/release/{name}").into()
    } else {
        format!("{target_dir}/wasm32-wasip1-threads/release/{name}.wasm").into()
    }
}
