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
//! layer   module     may use                                                                         what it is
//! leaf    error      -                                                                               error kinds: marked where errors are made (ErrorKind)
//! leaf    exit       -                                                                               how runs and threads end
//! leaf    pool       -                                                                               OS threads for guest threads
//! leaf    trace      -                                                                               offsets and backtraces in the user's module
//! leaf    limits     -                                                                               every cap of a run (Limits) and the budgets that enforce them
//! leaf    hostfd     -                                                                               descriptors the library opens: never 0, 1 or 2
//! leaf    interrupt  error                                                                           the interrupt page: where it is, its import, the live page
//! leaf    wait       hostfd pool                                                                     interruptible waits: the run's end wakes every one
//! core    hostfunc   wait                                                                            host functions (HostFunc), values, what a call sees of its caller
//! core    hooks      exit                                                                            the host's callbacks (Hooks) and a run's calls of them
//! core    coredump   error exit hostfd trace                                                         the core dump of a run that trapped: gathering and format
//! core    wasi       error exit hostfd limits pool wait                                              WASI preview 1: a run's WASI state and every call
//! core    config     hooks hostfunc limits wasi                                                      what one run gets
//! core    group      coredump error exit hooks interrupt limits pool trace wait wasi                 a run's life: threads, spawn, supervision, teardown
//! core    host       config exit group hostfunc limits wait wasi                                     the linker glue: WASI per store, thread-spawn, atomics, host functions
//! core    engine     error interrupt pool                                                            the Wasmtime engine and pool
//! core    module     engine error group host hostfunc interrupt trace                                load, shape checks, rewrite
//! top     launch     config coredump error group hooks host hostfunc interrupt limits module wasi    a run's or instance's group made from a module and a config
//! top     run        config error exit group hooks launch module                                     the public Run: a command's life
//! top     instance   config error exit group host hostfunc launch limits module run                  the public Instance: a plugin's life, export calls, guest memory
//! top     ffi        config engine error exit hooks hostfd hostfunc instance limits module run wasi  the C ABI
//! ```

pub mod config;
mod coredump;
mod engine;
pub mod error;
mod exit;
mod group;
mod hooks;
mod host;
mod hostfd;
mod hostfunc;
mod instance;
mod interrupt;
mod launch;
pub mod limits;
mod module;
mod pool;
mod run;
mod trace;
mod wait;
mod wasi;

pub mod ffi;

pub use config::{Preopen, PreopenSocket, RunConfig};
pub use engine::{Engine, EngineConfig};
pub use error::{os_errno, ErrorKind};
pub use exit::{ExitKind, RunExit, ThreadExit};
pub use hooks::{DiagnosticCallback, Hooks, ThreadExitCallback, ThreadStartCallback, MAX_DIAGNOSTICS};
pub use hostfunc::{
    Caller, FuncType, HostCallback, HostFunc, HostResults, IntoHostFunc, Val, ValKind, WasmList, WasmTy, WithCaller,
    WithoutCaller,
};
pub use instance::{CallMode, Instance, InstanceEnded, TypedExport};
pub use limits::Limits;
pub use module::Module;
pub use run::Run;
pub use wasi::{Input, Output, OutputCallback};

/// A run's standard streams as the host specifies them in a [`RunConfig`] (also at the
/// crate root), and the default descriptor limit.
pub mod io {
    pub use crate::limits::DEFAULT_MAX_FDS;
    pub use crate::wasi::{Input, Output, OutputCallback};
}

/// The library version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
