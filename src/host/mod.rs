//! Every import the library provides to guests, and the one [`add_to_linker`] that
//! registers them all:
//! - `wasi_link.rs`: WASI preview 1 (`crate::wasi`) for every thread of a run;
//! - `spawn.rs`: `wasi::thread-spawn`;
//! - `atomics.rs`: the host side of the rewritten `memory.atomic.wait32/64` and
//!   `memory.atomic.notify` (the rewrite itself is `module/rewrite.rs`);
//! - here: the names of the library's internal import module, which only rewritten
//!   modules import from, and its `first_instance`.
//!
//! Host functions reach their run through [`StoreData`]; they block only through the
//! primitives of [`crate::wait`], so that every one of them wakes when the run ends.

mod atomics;
mod imports;
mod spawn;
mod wasi_link;

use wasmtime::{Caller, Linker};

use crate::group::{Adopted, StoreData};

pub(crate) use atomics::{AtomicImport, AtomicOp};
pub(crate) use imports::define as define_host_funcs;
pub(crate) use wasi_link::{P1_FUNCTIONS, P1_MODULE};

/// The import module of everything the rewrite adds (`module/rewrite.rs`): the atomics
/// functions ([`AtomicImport`]), [`FIRST_INSTANCE_IMPORT`], [`SHARED_MEMORY_IMPORT`], and
/// the interrupt page ([`crate::interrupt::MEMORY_IMPORT`]). A module of the user's own
/// may not import from it.
pub(crate) const INTERNAL_MODULE: &str = "wasithreads:internal";

/// The import a shared memory the module defines becomes.
pub(crate) const SHARED_MEMORY_IMPORT: &str = "memory";

/// `() -> ()`: what the adoption entry calls (`module/adopt.rs`); unwinds the adopted
/// host thread back to the host.
pub(crate) const ADOPTED_IMPORT: &str = "adopted";

/// `() -> i32`: 1 for the first instance of a run, 0 for every later one (so the
/// generated start function applies data segments once).
pub(crate) const FIRST_INSTANCE_IMPORT: &str = "first_instance";

/// The import module and name of `thread-spawn`, fixed by the wasi-threads proposal.
pub(crate) const SPAWN_IMPORT: (&str, &str) = ("wasi", "thread-spawn");

/// Defines every host function: WASI preview 1, `wasi::thread-spawn`, and the atomics
/// functions of one module's rewrite (`atomics`, as the module imports them).
pub(crate) fn add_to_linker(linker: &mut Linker<StoreData>, atomics: &[AtomicImport]) -> anyhow::Result<()> {
    wasi_link::add_to_linker(linker)?;
    spawn::add_to_linker(linker)?;
    linker.func_wrap(INTERNAL_MODULE, FIRST_INSTANCE_IMPORT, |caller: Caller<'_, StoreData>| -> i32 {
        i32::from(caller.data().group.claim_first_instance())
    })?;
    linker.func_wrap(INTERNAL_MODULE, ADOPTED_IMPORT, |caller: Caller<'_, StoreData>| -> wasmtime::Result<()> {
        if caller.data().adopting {
            return Err(wasmtime::Error::new(Adopted));
        }
        wasmtime::bail!("the guest called the adoption entry of wasithreads outside an adoption")
    })?;
    for imp in atomics {
        atomics::define(linker, *imp)?;
    }
    Ok(())
}
