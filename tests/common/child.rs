//! Running one test of the current test binary again in a child process: for tests that
//! may crash the process (a fault in host code, a Wasmtime abort), that count its
//! descriptors, threads, mappings or memory (which other tests running at the same time
//! disturb), or that change process-wide state (its stdin).
//!
//! The child is selected by the test's full name as libtest reports it (`module::test`),
//! taken from the name of the calling test's thread, so tests keep working when they move
//! between modules.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a child test may take before it is killed and the test fails: far more than
/// any test needs, so that a deadlock fails the test instead of hanging the suite.
const CHILD_LIMIT: Duration = Duration::from_secs(300);

const CHILD_ENV: &str = "WT_TEST_CHILD";

/// True in the child process.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// The full libtest name of the test function `name` in the calling test's module: the
/// current test thread's name (`module::caller`) with its last segment replaced.
fn full_name(name: &str) -> String {
    let current = std::thread::current();
    let caller = current.name().expect("called from a test's own thread (libtest names it after the test)");
    match caller.rsplit_once("::") {
        Some((module, _)) => format!("{module}::{name}"),
        None => name.to_string(),
    }
}

/// Runs the test `name` (of the caller's module) of this binary in a child process, with
/// `extra` libtest arguments; returns its status and its output (stderr, then stdout).
/// Kills the child and fails the test after `CHILD_LIMIT`.
fn run_child(name: &str, extra: &[&str]) -> (ExitStatus, String) {
    let full = full_name(name);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &full, "--nocapture", "--test-threads=1"])
        .args(extra)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the child test");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CHILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child test {full} not finished within {CHILD_LIMIT:?}: deadlock?");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text =
        String::from_utf8_lossy(&err.join().unwrap()).into_owned() + &String::from_utf8_lossy(&out.join().unwrap());
    // A filter that matched nothing passes with zero tests run: that is a broken filter,
    // not a passing child.
    assert!(text.contains("running 1 test"), "the child filter {full} selected no test:\n{text}");
    (status, text)
}

/// Runs the ignored test `name` of the caller's module in a child process and returns its
/// status and its output (stderr, then stdout).
pub fn in_child(name: &str) -> (ExitStatus, String) {
    run_child(name, &["--ignored"])
}

/// In the parent: runs the calling test (`name`, its function name) again alone in a
/// child process and fails if the child did (a crash, an abort, a failed assertion). In
/// the child: returns true, and the test does its work.
pub fn isolated(name: &str) -> bool {
    if is_child() {
        return true;
    }
    let me = std::thread::current().name().map(str::to_string);
    assert_eq!(me.as_deref(), Some(full_name(name).as_str()), "isolated() takes the calling test's own name");
    let (status, text) = run_child(name, &[]);
    assert!(status.success(), "{name} failed in its child process ({status}):\n{text}");
    false
}
