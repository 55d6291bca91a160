//! WASI preview 1 for every thread of a run, from one shared `WasiP1Ctx`.
//!
//! Most functions lock the run's context for the length of one call and hand it to the
//! wiggle entry points of `wasmtime-wasi` (`delegate.rs`). The calls that can block for
//! long are ours, so that they never hold the lock while blocking and wake when the run
//! ends: reads from stdin and writes to stdout/stderr (`stdio.rs`), `poll_oneoff` on clocks
//! and stdin (`poll.rs`), `proc_exit` and `sched_yield` (`proc.rs`).

mod ctx;
mod delegate;
mod memory;
mod poll;
mod proc;
mod stdio;

use wasmtime::Linker;

use crate::group::StoreData;

pub(crate) use ctx::build_ctx;
pub(crate) use delegate::P1_FUNCTIONS;

/// The import module of WASI preview 1.
pub(crate) const P1_MODULE: &str = "wasi_snapshot_preview1";

/// Defines all WASI preview 1 functions.
pub(super) fn add_to_linker(linker: &mut Linker<StoreData>) -> anyhow::Result<()> {
    delegate::add_to_linker(linker)?;
    stdio::add_to_linker(linker)?;
    poll::add_to_linker(linker)?;
    proc::add_to_linker(linker)?;
    Ok(())
}

/// WASI errno values returned by our own implementations.
mod errno {
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const IO: i32 = 29;
    pub const PIPE: i32 = 64;
}
