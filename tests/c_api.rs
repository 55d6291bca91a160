//! The C API through the committed header: compiles tests/c/*.c{,pp} against
//! include/wasithreads.h and the cdylib this `cargo test` built, then runs them.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::c::{c_program, compile, compile_with};

fn api_test() -> PathBuf {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(|| compile("cc", "-std=c11", "tests/c/api_test.c", "c-api-test")).clone()
}

#[test]
fn c_program_exercises_the_api() {
    let out = c_program(&api_test()).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("checks passed"), "{stdout}");
}

#[test]
fn header_compiles_as_cpp17() {
    let exe = compile("c++", "-std=c++17", "tests/c/header_cpp.cpp", "c-api-header-cpp");
    assert!(c_program(&exe).status().unwrap().success());
}

#[test]
fn output_from_every_thread_arrives() {
    let dir = common::temp_dir("c-print");
    let wasm = dir.join("guest.wasm");
    std::fs::write(&wasm, common::rust_guest()).unwrap();
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

#[test]
fn host_process_survives_a_guest_exit_and_reports_the_code() {
    let dir = common::temp_dir("c-exit");
    let wasm = dir.join("guest.wasm");
    std::fs::write(&wasm, common::rust_guest()).unwrap();
    let out = c_program(&api_test()).arg("run").arg(&wasm).arg("exit-while-join").output().unwrap();
    // The C host itself returns the guest's code: it was alive after the guest's exit(42).
    assert_eq!(out.status.code(), Some(42), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("unreachable"));
}

#[test]
fn c_program_exercises_host_control() {
    let exe = compile_with(
        "cc",
        "-std=c11",
        "tests/c/host_control.c",
        "c-host-control",
        &["-pthread", "-D_POSIX_C_SOURCE=200809L"],
    );
    let dir = common::temp_dir("c-host-control");
    let wasm = dir.join("guest.wasm");
    std::fs::write(&wasm, common::rust_guest()).unwrap();
    let out = c_program(&exe).arg(&wasm).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}

#[test]
fn null_for_every_pointer_argument() {
    let exe = compile("cc", "-std=c11", "tests/c/null_args.c", "c-null-args");
    let out = c_program(&exe).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}
