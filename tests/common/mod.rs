//! Shared helpers for the integration tests: guest modules and a watchdog.
#![allow(dead_code)]

pub mod c;
pub mod c_guest;
pub mod child;
pub mod fd_guest;
pub mod plugin;
pub mod wasi;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasithreads::{Engine, EngineConfig, Module, Preopen, Run, RunConfig, RunExit, ThreadExit};

/// Thread behaviours understood by `guest.wat` (the spawn argument).
pub const SPIN: i32 = 0;
pub const WAIT_FOREVER: i32 = 1;
pub const SLEEP_HOUR: i32 = 2;
pub const READ_STDIN: i32 = 3;
pub const TRAP: i32 = 4;
pub const EXIT_33: i32 = 5;
pub const PRINT: i32 = 6;
pub const WAIT64_FOREVER: i32 = 7;

/// The guest shared by every language's tests (`tests/guests/wat/writers.wat`): eight
/// threads each write 50 blocks of 1000 bytes of their own letter to stdout.
pub const WRITERS: &str = include_str!("../guests/wat/writers.wat");

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
pub struct Capture(pub Arc<Mutex<Writes>>);

/// `(tid, bytes)` of each `fd_write`, in order.
pub type Writes = Vec<(i32, Vec<u8>)>;

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

/// Starts `wat`, lets it run for `after`, cancels it and returns the outcome and how long
/// the cancel took to end the run.
pub fn cancel_after(wat: &str, config: RunConfig, after: Duration) -> (RunExit, Duration) {
    let module = load(&engine(), wat);
    let (exit, _, took) = cancel_module(&module, config, after);
    (exit, took)
}

/// A threaded guest with a shared memory of `pages` pages, every WASI import it uses and
/// a few helpers; `body` adds `_start`, `wasi_thread_start` and anything else.
///
/// Helpers: `$sleep(ns)` (poll_oneoff on a clock, subscription at 0x400, event 0x440,
/// count 0x460), `$wait_count(addr, n)`, `$bump(addr)` (atomic add 1 and notify).
pub fn wasi_guest(pages: u32, data: &str, body: &str) -> String {
    format!(
        r#"(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $path_filestat_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $path_create_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $fd_renumber (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_sync" (func $fd_sync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "env" "memory" (memory {pages} {pages} shared))
  (export "memory" (memory 0))
  {data}
  (func $sleep (param $ns i64)
    (i64.store (i32.const 0x400) (i64.const 0))
    (i32.store8 (i32.const 0x408) (i32.const 0))
    (i32.store (i32.const 0x410) (i32.const 1))
    (i64.store (i32.const 0x418) (local.get $ns))
    (i64.store (i32.const 0x420) (i64.const 0))
    (i32.store16 (i32.const 0x428) (i32.const 0))
    (drop (call $poll (i32.const 0x400) (i32.const 0x440) (i32.const 1) (i32.const 0x460))))
  (func $wait_count (param $addr i32) (param $n i32)
    (local $seen i32)
    (block $done
      (loop $again
        (local.set $seen (i32.atomic.load (local.get $addr)))
        (br_if $done (i32.ge_u (local.get $seen) (local.get $n)))
        (drop (memory.atomic.wait32 (local.get $addr) (local.get $seen) (i64.const 1000000)))
        (br $again))))
  (func $bump (param $addr i32)
    (drop (i32.atomic.rmw.add (local.get $addr) (i32.const 1)))
    (drop (memory.atomic.notify (local.get $addr) (i32.const -1))))
  {body})"#
    )
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &std::path::Path) {
    rustix::fs::mknodat(rustix::fs::CWD, path, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0)
        .unwrap();
}

/// `dir` preopened as `/sandbox` (fd 3 when it is the first preopen), writable.
pub fn sandbox_preopen(dir: &std::path::Path) -> Preopen {
    Preopen { host: dir.to_path_buf(), guest: "/sandbox".into(), read_only: false }
}

/// Waits for the engine's idle pool threads to exit (0.5 s idle timeout) and for
/// descriptors to close, then returns (descriptors, threads).
pub fn settled() -> (usize, usize) {
    std::thread::sleep(Duration::from_millis(1200));
    (open_fds(), os_threads())
}

/// Collects every diagnostic of a run started with `config`: (tid, message).
pub fn diagnostics(config: &mut RunConfig) -> Arc<Mutex<Vec<(i32, String)>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    config.hooks.on_diagnostic = Some(Arc::new(move |tid, m: &str| l.lock().unwrap().push((tid, m.to_string()))));
    log
}

/// Waits (bounded) until `f` holds.
pub fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..6000 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

/// Makes `cmd`'s child get the descriptor `fd` of this process as its fd 3 (inherited,
/// without close-on-exec), as a socket-activating parent passes a listener.
pub fn pass_as_fd3(cmd: &mut std::process::Command, fd: std::os::fd::RawFd) {
    // SAFETY: between fork and exec only `dup2` or `fcntl`, which are async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || {
            let ok = if fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
