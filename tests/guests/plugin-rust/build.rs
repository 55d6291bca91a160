//! Link arguments for the plugin (no `-Z` flag needed):
//! - wasi-libc's `crt1-reactor.o` from Rust's own self-contained sysroot. Rust 1.95 links a
//!   `cdylib` for wasm32-wasip1-threads with no crt1 at all, and wasm-ld then treats the
//!   module as a *command*: it wraps every export (`wasi_thread_start` too) in a
//!   `NAME.command_export` function that calls `__wasm_call_dtors` after it (stdio flushed
//!   and atexit handlers run after every call) and exports no `_initialize`. With
//!   crt1-reactor.o the module is a reactor: `_initialize` (constructors, once), exports
//!   unwrapped. (`-Z wasi-exec-model=reactor` does the same for a `bin`, on nightly only.)
//! - `malloc` and `free` exported, for the host to place buffers in guest memory (Rust's
//!   std allocates with wasi-libc's malloc on WASI), as the C plugin does.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rustc-link-arg-cdylib=--export=malloc");
    println!("cargo:rustc-link-arg-cdylib=--export=free");
    if std::env::var("TARGET").as_deref() != Ok("wasm32-wasip1-threads") {
        return;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).args(["--print", "sysroot"]).output().expect("running rustc --print sysroot");
    let sysroot = String::from_utf8(out.stdout).expect("sysroot is UTF-8");
    let crt: PathBuf =
        [sysroot.trim(), "lib/rustlib/wasm32-wasip1-threads/lib/self-contained/crt1-reactor.o"].iter().collect();
    assert!(crt.is_file(), "{} is missing: rustup target add wasm32-wasip1-threads", crt.display());
    println!("cargo:rustc-link-arg-cdylib={}", crt.display());
}
