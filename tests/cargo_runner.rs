//! wt-run as a cargo runner: a crate's own `cargo test --target wasm32-wasip1-threads`
//! (tests/guests/runner-demo: std::thread, Mutex, channel, 16 threads at once) runs its
//! test binary under wt-run, built from examples-c/wt-run.c against this build.

mod common;

use std::process::Command;

use common::c::{compile_with, lib_dir};

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
