//! wasithreads: run WebAssembly modules that use wasi-threads on Wasmtime, in-process.
//!
//! A safe Rust core ([`Engine`], [`Module`], [`RunConfig`], [`Run`]) owns every guest
//! thread of a run and turns traps, `proc_exit` and timeouts into a [`RunExit`] value
//! instead of ending the process; a thin C ABI in [`ffi`] (`wt_*`, header
//! `include/wasithreads.h`) sits on top. Nothing here calls `std::process::exit` or aborts
//! on purpose.
//!
//! # Layers
//! Each module uses only the modules listed after it (`scripts/check-layers.py` checks
//! this list against the `crate::` paths in the sources, in CI):
//!
//! ```text
//! layer   module  may use                                      what it is
//! leaf    exit    -                                            how runs and threads end
//! leaf    pool    -                                            OS threads for guest threads
//! leaf    io      -                                            stdio specs and live streams
//! leaf    trace   -                                            offsets and backtraces in the user's module
//! leaf    limits  -                                            budgets: the one primitive behind every cap
//! leaf    wait    pool                                         interruptible waits: the run's end wakes every one
//! core    config  exit io                                      what one run gets
//! core    group   exit io pool trace wait                      a run's threads: state, spawn, teardown
//! core    host    group io config wait                         every import: WASI, thread-spawn, atomics
//! core    engine  pool                                         the Wasmtime engine and pool
//! core    module  engine group host trace                      load, shape checks, rewrite
//! top     run     config exit group host io module             the public Run: joins the rest
//! top     ffi     config engine exit io module run             the C ABI
//! ```

pub mod config;
mod engine;
mod exit;
mod group;
mod host;
// Used by the fd table, the copy buffers and the group as they move onto it (issue 19).
pub mod io;
#[allow(dead_code)]
mod limits;
mod module;
mod pool;
mod run;
mod trace;
mod wait;

pub mod ffi;

pub use config::{Preopen, RunConfig};
pub use engine::{Engine, EngineConfig};
pub use exit::{DiagnosticCallback, ExitKind, RunExit, ThreadExit, ThreadExitCallback, ThreadStartCallback};
pub use io::{Input, Output, OutputCallback};
pub use module::Module;
pub use run::Run;

/// The library version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
