//! Building and running the C test programs against this build's libwasithreads.

use std::path::PathBuf;
use std::process::Command;

/// target/<profile>/deps: where this `cargo test` built libwasithreads.so (cargo copies it
/// up to target/<profile> only on `cargo build`, so that copy may be stale here).
/// Also makes the SONAME link (libwasithreads.so.<version>) that programs linked to it look for.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_path_buf();
    let soname = concat!("libwasithreads.so.", env!("CARGO_PKG_VERSION"));
    let _ = std::os::unix::fs::symlink("libwasithreads.so", dir.join(soname));
    dir
}

pub fn compile(compiler: &str, std: &str, source: &str, out: &str) -> PathBuf {
    compile_with(compiler, std, source, out, &[])
}

pub fn compile_with(compiler: &str, std: &str, source: &str, out: &str, extra: &[&str]) -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let lib = lib_dir();
    let exe_dir = lib.parent().unwrap().join("c-tests");
    std::fs::create_dir_all(&exe_dir).unwrap();
    let exe = exe_dir.join(out);
    let status = Command::new(compiler)
        .args([std, "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-o"])
        .arg(&exe)
        .arg(format!("-I{root}/include"))
        .arg(format!("-I{root}/tests/c"))
        .arg(format!("{root}/{source}"))
        .arg(format!("-L{}", lib.display()))
        .arg("-lwasithreads")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(extra)
        .status()
        .unwrap_or_else(|e| panic!("running {compiler}: {e}"));
    assert!(status.success(), "{compiler} {source} failed");
    exe
}

/// A command for a compiled C test program. cargo puts target/<profile> on
/// LD_LIBRARY_PATH for tests, and that path wins over the program's RUNPATH: it could load
/// a stale libwasithreads.so from an earlier `cargo build`. Point it at this build's.
pub fn c_program(exe: &std::path::Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.env("LD_LIBRARY_PATH", lib_dir());
    cmd
}
