//! Running one test of the current test binary again in a child process: for tests that
//! may crash the process (a fault in host code, a Wasmtime abort) or that count its
//! descriptors, threads or memory (which other tests running at the same time disturb).

use std::process::Command;

/// True in the child process.
pub fn is_child() -> bool {
    std::env::var_os("WT_ATTACK_CHILD").is_some()
}

/// Runs the ignored test `name` of this binary in a child process and returns its status
/// and its output (stderr, then stdout).
pub fn in_child(name: &str) -> (std::process::ExitStatus, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
        .env("WT_ATTACK_CHILD", "1")
        .output()
        .expect("running the child test");
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout))
}

/// In the parent: runs the calling test (`name`, its function name) again alone in a
/// child process and fails if the child did (a crash, an abort, a failed assertion). In
/// the child: returns true, and the test does its work.
pub fn isolated(name: &str) -> bool {
    if is_child() {
        return true;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("WT_ATTACK_CHILD", "1")
        .output()
        .expect("running the child test");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed in its child process ({}):\n{text}", out.status);
    false
}
