//! The C ABI and what is built on it: the C and C++ test programs compiled against the
//! committed header and this build's cdylib (`tests/c/`), the Python ctypes test
//! (`tests/python/`), and wt-run (`examples-c/wt-run.c`) as a cargo runner for a crate's
//! own tests (`tests/guests/runner-demo`).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::c::{c_program, compile, compile_with, lib_dir};

fn api_test() -> PathBuf {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(|| compile("cc", "-std=c11", "tests/c/api_test.c", "c-api-test")).clone()
}

/// The C test program (`tests/c/api_test.c`) passes its checks of the whole API through
/// the committed header: the header and the cdylib agree.
#[test]
fn c_program_exercises_the_api() {
    let out = c_program(&api_test()).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("checks passed"), "{stdout}");
}

/// The header compiles and links as C++17 (`tests/c/header_cpp.cpp`): C++ hosts include
/// it as is.
#[test]
fn header_compiles_as_cpp17() {
    let exe = compile("c++", "-std=c++17", "tests/c/header_cpp.cpp", "c-api-header-cpp");
    assert!(c_program(&exe).status().unwrap().success());
}

/// Output of every thread of a real guest reaches a C host's output callback, each line
/// whole.
#[test]
fn output_from_every_thread_arrives() {
    let dir = crate::common::temp_dir("c-print");
    let wasm = dir.join("guest.wasm");
    std::fs::write(&wasm, crate::common::rust_guest()).unwrap();
    let out = c_program(&api_test()).arg("run").arg(&wasm).arg("print").stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"done"));
    lines.pop();
    lines.sort();
    let mut expected: Vec<String> = (0..4).flat_map(|t| (0..10).map(move |i| format!("thread {t} line {i}"))).collect();
    expected.sort();
    assert_eq!(lines, expected);
}

/// A guest's `exit` in a thread does not end the C host's process: the host gets the code
/// and returns it itself.
#[test]
fn host_process_survives_a_guest_exit_and_reports_the_code() {
    let dir = crate::common::temp_dir("c-exit");
    let wasm = dir.join("guest.wasm");
    std::fs::write(&wasm, crate::common::rust_guest()).unwrap();
    let out = c_program(&api_test()).arg("run").arg(&wasm).arg("exit-while-join").output().unwrap();
    // The C host itself returns the guest's code: it was alive after the guest's exit(42).
    assert_eq!(out.status.code(), Some(42), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("unreachable"));
}

/// The host-control C program (`tests/c/host_control.c`: background runs, cancel,
/// stdio, environment, limits, cache, callbacks) passes its checks, with the shared guests
/// of `tests/guests/wat`.
#[test]
fn c_program_exercises_host_control() {
    let exe = compile_with(
        "cc",
        "-std=c11",
        "tests/c/host_control.c",
        "c-host-control",
        &["-pthread", "-D_POSIX_C_SOURCE=200809L"],
    );
    let dir = crate::common::temp_dir("c-host-control");
    let wasm = dir.join("guest.wasm");
    std::fs::write(&wasm, crate::common::rust_guest()).unwrap();
    checks_pass(c_program(&exe).arg(&wasm).arg(SHARED_GUESTS));
}

/// Each kind of error, provoked for real through the C API, has its `wt_error_kind`, and
/// the I/O ones their OS error (`tests/c/error_kinds.c`).
#[test]
fn errors_have_their_kind_and_os_error() {
    let exe = compile_with("cc", "-std=c11", "tests/c/error_kinds.c", "c-error-kinds", &["-D_POSIX_C_SOURCE=200809L"]);
    let dir = crate::common::temp_dir("c-error-kinds");
    checks_pass(c_program(&exe).arg(&dir));
}

/// Waiting for or freeing a run from inside its own callbacks (thread start and exit,
/// output, diagnostic on a guest thread and on the supervisor) is refused or deferred,
/// never a deadlock (`tests/c/reentry.c`, which an alarm ends if it hangs).
#[test]
fn c_program_waits_and_frees_from_callbacks_without_deadlock() {
    let exe =
        compile_with("cc", "-std=c11", "tests/c/reentry.c", "c-reentry", &["-pthread", "-D_POSIX_C_SOURCE=200809L"]);
    checks_pass(c_program(&exe).arg(SHARED_GUESTS));
}

/// Plugins through the C API (`tests/c/plugin.c`): host functions, an instance called
/// from 8 host threads at once, guest memory, the instance's end by a trap, a cancel
/// with calls in flight and a blocking host function, `proc_exit`, finalizers.
#[test]
fn plugins_host_functions_and_instances() {
    let exe = compile_with("cc", "-std=c11", "tests/c/plugin.c", "c-plugin", &["-pthread"]);
    checks_pass(c_program(&exe).arg(SHARED_GUESTS));
}

/// `wt_run_cancel` from a signal handler: SIGINT sent to the host thread every ~100 us
/// while it starts runs and waits for them cancels each run, whatever the thread was
/// doing in the library, without a deadlock and with `errno` kept
/// (`tests/c/signal_cancel.c`, which an alarm ends if it hangs).
#[test]
fn c_program_cancels_runs_from_a_signal_handler() {
    let exe = compile_with(
        "cc",
        "-std=c11",
        "tests/c/signal_cancel.c",
        "c-signal-cancel",
        &["-pthread", "-D_POSIX_C_SOURCE=200809L"],
    );
    checks_pass(c_program(&exe).arg(SHARED_GUESTS));
}

/// The real C plugin (`tests/guests/plugin-c`) through the C API
/// (`tests/c/plugin_real.c`): 8 host threads calling it at once with every result
/// checked, crashes that end the instance, cancel and timeout with calls in flight and
/// blocking host functions, background threads joined by close.
#[test]
fn c_program_drives_the_real_c_plugin() {
    let exe = compile_with(
        "cc",
        "-std=c11",
        "tests/c/plugin_real.c",
        "c-plugin-real",
        &["-pthread", "-D_POSIX_C_SOURCE=200809L"],
    );
    checks_pass(c_program(&exe).arg(crate::common::plugin::c_plugin()));
}

/// NULL for every pointer argument of every function gets an error or is ignored as
/// documented, never a crash (`tests/c/null_args.c`).
#[test]
fn null_for_every_pointer_argument() {
    let exe = compile("cc", "-std=c11", "tests/c/null_args.c", "c-null-args");
    checks_pass(&mut c_program(&exe));
}

/// A forked child creates an engine, loads and runs; another uses the parent's engine and
/// module (`tests/c/fork.c`, which kills a child that hangs).
#[test]
fn a_forked_child_loads_and_runs() {
    let exe = compile_with("cc", "-std=c11", "tests/c/fork.c", "c-fork", &["-D_POSIX_C_SOURCE=200809L"]);
    checks_pass(c_program(&exe).arg(format!("{SHARED_GUESTS}/printers.wat")));
}

/// An engine's load limits refuse a module over them with a limit error, before
/// compiling it (`tests/c/load_limits.c`).
#[test]
fn load_limits_refuse_big_modules() {
    let exe = compile("cc", "-std=c11", "tests/c/load_limits.c", "c-load-limits");
    checks_pass(&mut c_program(&exe));
}

/// The shared WAT guests of every language's tests.
const SHARED_GUESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/guests/wat");

/// Runs a C test program (stdin closed) and checks that it succeeded and says its checks
/// passed.
fn checks_pass(program: &mut Command) {
    let out = program.stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}

/// Python's standard ctypes can drive the library (`tests/python/test_ctypes.py`): any
/// language that can load a shared library can use it.
#[test]
fn python_ctypes_drives_the_library() {
    let lib = crate::common::c::lib_dir().join("libwasithreads.so");
    let out = Command::new("python3")
        .arg(format!("{}/tests/python/test_ctypes.py", env!("CARGO_MANIFEST_DIR")))
        .arg(&lib)
        .output()
        .expect("python3 must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("python ctypes: 4 passed, 0 failed"), "{stdout}");
}

/// wt-run works as a cargo runner: a crate's own `cargo test` for wasm32-wasip1-threads
/// (std::thread, Mutex, channels, 16 threads at once) runs its test binary under wt-run.
#[test]
fn cargo_test_runs_under_wt_run() {
    let wt_run = compile_with("cc", "-std=c11", "examples-c/wt-run.c", "wt-run", &[]);
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--lib", "--target", "wasm32-wasip1-threads", "--manifest-path"])
        .arg(format!("{root}/tests/guests/runner-demo/Cargo.toml"))
        .env("CARGO_TARGET_DIR", format!("{root}/target/guests"))
        .env("CARGO_TARGET_WASM32_WASIP1_THREADS_RUNNER", &wt_run)
        .env("LD_LIBRARY_PATH", lib_dir())
        .output()
        .expect("running cargo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The test binary is a .wasm file: only the runner can have produced these lines.
    assert!(stderr.contains(".wasm"), "{stderr}");
    for name in [
        "threads_join_with_results",
        "mutex_protects_a_counter",
        "channel_carries_messages_between_threads",
        "sixteen_threads_at_once",
    ] {
        assert!(stdout.contains(&format!("test tests::{name} ... ok")), "{name}:\n{stdout}");
    }
    assert!(stdout.contains("test result: ok. 4 passed; 0 failed"), "{stdout}");
}

/// One run cannot stall another, and writers stop with their run wherever they wait
/// (`tests/c/stalls.c`): a run cancelled while another blocks on the same full stdout
/// pipe, stdout a terminal or a socket with no room, writers queued for a slow output
/// callback; each returns without the teardown grace, every thread ended, no callback
/// after `wt_run_free`, the host's descriptor flags unchanged.
#[test]
fn no_run_stalls_another_and_writers_stop_with_their_run() {
    let exe = compile_with("cc", "-std=c11", "tests/c/stalls.c", "c-stalls", &["-pthread", "-D_XOPEN_SOURCE=700"]);
    let out = c_program(&exe).arg(SHARED_GUESTS).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\nstdout: {stdout}\nstderr: {stderr}", out.status);
    assert!(stdout.contains("checks passed"), "{stdout}");
    // The stop times, for the header's table.
    eprint!("{stderr}");
}
