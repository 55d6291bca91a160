//! wasithreads: run WebAssembly modules that use wasi-threads on Wasmtime, in-process.
//!
//! The crate has two layers:
//! - a safe Rust core ([`Engine`], [`Module`], [`RunConfig`], [`Run`]) that owns every
//!   guest thread of a run and turns traps, `proc_exit` and timeouts into a [`RunExit`]
//!   value instead of ending the process;
//! - a thin C ABI in [`ffi`] (`wt_*` functions, header `include/wasithreads.h`).
//!
//! Nothing in this crate calls `std::process::exit` or aborts on purpose.

pub mod config;
mod engine;
mod exit;
mod module;
mod pool;
mod rewrite;
mod run;
pub mod stdio;
mod wasi;

pub mod ffi;

pub use config::RunConfig;
pub use engine::{Engine, EngineConfig};
pub use exit::{ExitKind, RunExit, ThreadExit, ThreadExitCallback, ThreadStartCallback};
pub use module::Module;
pub use run::Run;

/// The library version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
