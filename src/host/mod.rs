//! Every import the library provides to guests, and the one [`add_to_linker`] that
//! registers them all:
//! - `wasi/`: WASI preview 1 for every thread of a run, from one shared context;
//! - `spawn.rs`: `wasi::thread-spawn`;
//! - `atomics.rs`: the host side of the rewritten `memory.atomic.wait32/64` and
//!   `memory.atomic.notify` (the rewrite itself is `module/rewrite.rs`).
//!
//! Host functions reach their run through [`StoreData`]; they block only through the
//! primitives of [`crate::wait`], so that every one of them wakes when the run ends.

pub(crate) mod atomics;
mod spawn;
mod wasi;

use wasmtime::Linker;

use crate::group::StoreData;

pub(crate) use atomics::AtomicImport;
pub(crate) use wasi::{open_fds, P1_FUNCTIONS, P1_MODULE};

/// The import module and name of `thread-spawn`, fixed by the wasi-threads proposal.
pub(crate) const SPAWN_IMPORT: (&str, &str) = ("wasi", "thread-spawn");

/// Defines every host function: WASI preview 1, `wasi::thread-spawn`, and the atomics
/// functions of one module's rewrite (`atomics`, as the module imports them).
pub(crate) fn add_to_linker(linker: &mut Linker<StoreData>, atomics: &[AtomicImport]) -> anyhow::Result<()> {
    wasi::add_to_linker(linker)?;
    spawn::add_to_linker(linker)?;
    atomics::define_first_instance(linker)?;
    for imp in atomics {
        atomics::define(linker, *imp)?;
    }
    Ok(())
}
