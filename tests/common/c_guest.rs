//! C guests: compiled for wasm32-wasip1-threads with clang and wasm-ld from PyPI's
//! `ziglang` (`scripts/setup.sh` installs it) against the threaded wasi-libc that Rust
//! ships for that target, as `benches/real/build.sh` builds its C programs; and natively
//! with the host's `cc`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The command that runs zig: `$WT_ZIG` (words split on spaces), else `python3 -m ziglang`.
fn zig() -> Command {
    let spec = std::env::var("WT_ZIG").unwrap_or_else(|_| "python3 -m ziglang".into());
    let mut words = spec.split_whitespace();
    let mut cmd = Command::new(words.next().expect("WT_ZIG is empty"));
    cmd.args(words);
    cmd
}

fn check(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed (is PyPI's ziglang installed? scripts/setup.sh installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles the C file `source` (under the repository) into `target/guests/c/<name>.wasm`
/// and returns its path: `-O2 -pthread`, a shared imported memory of at most 1 GiB and a
/// 1 MiB main stack, as Rust links its wasm32-wasip1-threads programs.
pub fn build(source: &str, name: &str) -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = Path::new(root).join("target/guests/c");
    std::fs::create_dir_all(&dir).unwrap();
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().expect("rustc --print sysroot");
    let sysroot = String::from_utf8(sysroot.stdout).unwrap();
    let sc = Path::new(sysroot.trim()).join("lib/rustlib/wasm32-wasip1-threads/lib/self-contained");
    let flags = [
        "-target",
        "wasm32-wasi",
        "-mcpu=generic+atomics+bulk_memory+mutable_globals+sign_ext",
        "-pthread",
        "-D_REENTRANT",
    ];
    // Per-process names: test binaries may build the same guest at once.
    let obj = dir.join(format!("{name}-{}.o", std::process::id()));
    let tmp = dir.join(format!("{name}-{}.wasm", std::process::id()));
    check(
        zig().arg("cc").args(flags).args(["-O2", "-c"]).arg(Path::new(root).join(source)).arg("-o").arg(&obj),
        "zig cc",
    );
    check(
        zig()
            .arg("cc")
            .args(flags)
            .arg("-nostdlib")
            .arg(sc.join("crt1-command.o"))
            .arg(&obj)
            .arg(sc.join("libc.a"))
            .arg("-o")
            .arg(&tmp)
            .args([
                "-Wl,--shared-memory",
                "-Wl,--import-memory",
                "-Wl,--export-memory",
                "-Wl,--max-memory=1073741824",
                "-Wl,-z,stack-size=1048576",
            ]),
        "zig cc (link)",
    );
    let _ = std::fs::remove_file(&obj);
    let out = dir.join(format!("{name}.wasm"));
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// The echo server `tests/guests/c-server/server.c` as a module's bytes (built once per
/// test binary).
pub fn server() -> &'static [u8] {
    static WASM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    WASM.get_or_init(|| std::fs::read(build("tests/guests/c-server/server.c", "server")).unwrap())
}
