//! The Python ctypes test (tests/python/test_ctypes.py) against this build's library.

mod common;

use std::process::Command;

#[test]
fn python_ctypes_drives_the_library() {
    let lib = common::c::lib_dir().join("libwasithreads.so");
    let out = Command::new("python3")
        .arg(format!("{}/tests/python/test_ctypes.py", env!("CARGO_MANIFEST_DIR")))
        .arg(&lib)
        .output()
        .expect("python3 must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("python ctypes: 4 passed, 0 failed"), "{stdout}");
}
