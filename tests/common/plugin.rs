//! The plugin guests: threaded reactor modules built with real toolchains, for the plugin
//! (instance, host function) tests and benchmarks. Each is built on demand, once per test
//! binary, into target/guests, and rebuilt only when its sources change.
//!
//! - [`c_plugin`]: `tests/guests/plugin-c` (C, PyPI's ziglang + Rust's threaded wasi-libc,
//!   `crt1-reactor.o`; imports `env.host_log`, `env.host_add`, `env.host_block`);
//! - [`rust_plugin`]: `tests/guests/plugin-rust` (a Rust `cdylib` made a reactor by its
//!   build.rs; no host imports).
//!
//! What each export does is written at the top of each plugin's source.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

/// The path of the built C plugin (`tests/guests/plugin-c/plugin.c`).
pub fn c_plugin() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(build_c_plugin)
}

/// The C plugin's bytes.
pub fn c_plugin_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(c_plugin()).unwrap())
}

/// The path of the built Rust plugin (`tests/guests/plugin-rust`).
pub fn rust_plugin() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| super::build_guest("tests/guests/plugin-rust/Cargo.toml", "plugin_rust", false))
}

/// The Rust plugin's bytes.
pub fn rust_plugin_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(rust_plugin()).unwrap())
}

/// Runs `tests/guests/plugin-c/build.sh` unless target/guests/plugin-c/plugin.wasm is newer
/// than the plugin's source and build script. Several test binaries may build it at once:
/// each writes its own file and renames it into place.
fn build_c_plugin() -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let src = Path::new(root).join("tests/guests/plugin-c");
    let dir = Path::new(root).join("target/guests/plugin-c");
    let out = dir.join("plugin.wasm");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let newest_input = ["plugin.c", "build.sh"].iter().filter_map(|f| modified(&src.join(f))).max();
    if modified(&out).is_some_and(|built| Some(built) >= newest_input) {
        return out;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let tmp = dir.join(format!("plugin.wasm.{}.{stamp}.tmp", std::process::id()));
    let status = std::process::Command::new("bash")
        .arg(src.join("build.sh"))
        .arg(&tmp)
        .status()
        .expect("running tests/guests/plugin-c/build.sh");
    assert!(
        status.success(),
        "building the C plugin failed (does `python3 -m ziglang version` work? scripts/setup.sh installs ziglang)"
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}
