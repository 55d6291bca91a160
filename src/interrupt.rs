//! The interrupt page: what every interruption point of every thread of a run loads from
//! (the rewrite puts one at every loop head and the entries of functions that could run
//! long without one: `module/rewrite.rs`, `module/points.rs`). While the run goes on the
//! page is readable and a point costs about what a load costs; ending the run makes it
//! inaccessible, and the next interruption point of every busy thread faults. Wasmtime's
//! signal handler turns that fault into a "memory out of bounds" trap because the address
//! lies in a linear memory of the faulting store (its reservation or guard region; an
//! address outside every memory would make Wasmtime abort).
//!
//! Where the page is ([`Placement`]) depends on the module's shared memory:
//!
//! - [`Placement::ReservedPage`]: the 64 KiB at [`RESERVED_PAGE`] (0x7E15_0000) of the
//!   shared memory's address space, when the memory's maximum stays at least a wasm page
//!   below it (at most 32 276 pages, 1.97 GiB; Rust's `wasm32-wasip1-threads` links with
//!   16 384). Wasmtime reserves 4 GiB of address space (plus a guard region) for every
//!   32-bit memory and makes accessible only what the memory has grown to; a memory never
//!   grows past its maximum, so the page lies in reserved, inaccessible space for the
//!   whole run, and the run makes it readable when it starts. An interruption point is
//!   `i32.atomic.load (i32.const 0x7E15_0000)` on the shared memory, which Cranelift
//!   compiles to one load from the memory's base (in a register in any loop that uses the
//!   memory) plus a 32-bit displacement, with no bounds check.
//! - [`Placement::ImportedMemory`]: for memories with a larger maximum, 64-bit ones,
//!   custom page sizes and modules without a shared memory, a one-page memory of its own
//!   that the rewritten module imports ([`MEMORY_IMPORT`] of the library's internal import
//!   module) and the run provides, readable from birth. It costs a second base pointer
//!   live across every loop (and an address past 2 GiB a 64-bit constant), which Cranelift
//!   spills and reloads in hot loops: about 3 % more instructions on zstd.
//!
//! Why that address: below 2 GiB (a 32-bit displacement), and away from the addresses
//! tests pick to provoke an out-of-bounds access (2^31 - n, powers of two, the top of
//! the address space): a first version used the last 64 KiB below 2 GiB, and this
//! project's own Go test of `(i32.load (i32.const 0x7ffffff0))` stopped trapping.
//!
//! What a guest sees differently: while the run goes on, a load from those 64 KiB (out
//! of bounds, past its maximum) reads zeros instead of trapping. Stores there still
//! trap; no other address changes.

use anyhow::Result;
use wasmtime::error::Context as _;
use wasmtime::{MemoryType, SharedMemory};

use crate::error::{error, with_kind, ErrorKind, ResultKind};

/// Bytes of the interrupt page: one wasm page, a multiple of every host page size.
pub(crate) const PAGE_BYTES: u64 = 64 << 10;

/// Where the reserved page starts, from the shared memory's base (see the opening for
/// why there): the address interruption points load from (memarg offset 0).
pub(crate) const RESERVED_PAGE: u32 = 0x7E15_0000;

// Aligned for every host page size up to 64 KiB, and addressed with a 32-bit
// displacement. (`engine.rs` checks that the memory reservation holds it.)
const _: () = assert!((RESERVED_PAGE as u64).is_multiple_of(PAGE_BYTES));
const _: () = assert!(RESERVED_PAGE as u64 + PAGE_BYTES <= 1 << 31);

/// The name, in the library's internal import module, of the one-page memory of
/// [`Placement::ImportedMemory`].
pub(crate) const MEMORY_IMPORT: &str = "interrupt";

/// The type of [`MEMORY_IMPORT`]: one shared wasm page ([`PAGE_BYTES`]).
pub(crate) const MEMORY_TYPE: wasm_encoder::MemoryType =
    wasm_encoder::MemoryType { minimum: 1, maximum: Some(1), memory64: false, shared: true, page_size_log2: None };

/// Where a module's interruption points load from; fixed when the module is rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// The one-page memory [`MEMORY_IMPORT`] that the module imports.
    ImportedMemory,
    /// The shared memory's reserved page ([`has_reserved_page`]).
    ReservedPage,
}

/// Whether a shared memory of this type has the reserved page: 32-bit, 64 KiB pages, a
/// maximum of at least one page (Cranelift compiles any load from a memory of maximum 0
/// to a trap) that stays a page below the reserved page (so that a load running off the
/// end of a full memory still meets an inaccessible page).
pub(crate) fn has_reserved_page(memory64: bool, page_size_log2: Option<u32>, maximum_pages: Option<u64>) -> bool {
    let standard = !memory64 && page_size_log2.is_none_or(|log2| log2 == 16);
    let max = maximum_pages.and_then(|p| p.checked_mul(PAGE_BYTES));
    standard && max.is_some_and(|max| max >= PAGE_BYTES && max <= u64::from(RESERVED_PAGE) - PAGE_BYTES)
}

/// A run's interrupt page: one page-aligned range of a memory's mapping, which ending
/// the run closes.
pub(crate) struct Page {
    /// Keeps the mapping (accessible part, reservation, guards) alive.
    memory: SharedMemory,
    /// From the memory's base, a multiple of [`PAGE_BYTES`].
    offset: usize,
}

impl Page {
    /// The page of a run of a module whose points load from `placement`, `shared` being
    /// the run's shared memory. For [`Placement::ImportedMemory`], also the one-page
    /// memory the run must provide as [`MEMORY_IMPORT`].
    pub(crate) fn open(
        placement: Placement,
        engine: &wasmtime::Engine,
        shared: Option<&SharedMemory>,
    ) -> Result<(Page, Option<SharedMemory>)> {
        match (placement, shared) {
            (Placement::ReservedPage, Some(memory)) => Ok((Page::reserved(memory.clone())?, None)),
            (Placement::ReservedPage, None) => {
                Err(error(ErrorKind::Link, "the module's interruption points need its shared memory"))
            }
            (Placement::ImportedMemory, _) => {
                let ty = MemoryType::shared(1, 1);
                let memory =
                    SharedMemory::new(engine, ty).context("creating the interrupt page").kind(ErrorKind::Limit)?;
                Ok((Page { memory: memory.clone(), offset: 0 }, Some(memory)))
            }
        }
    }

    /// The reserved page of `memory`, made readable.
    ///
    /// The page lies in the address space Wasmtime reserved for the memory (`engine.rs`
    /// checks its reservation) and, as the module's shape was checked with
    /// [`has_reserved_page`], past the memory's maximum, so it never becomes part of the
    /// accessible memory, whose protection Wasmtime changes as it grows.
    fn reserved(memory: SharedMemory) -> Result<Page> {
        let page = Page { memory, offset: RESERVED_PAGE as usize };
        page.protect(libc::PROT_READ)
            .map_err(|e| with_kind(ErrorKind::Limit, e).context("opening the interrupt page"))?;
        Ok(page)
    }

    /// Makes the page inaccessible: busy threads fault at their next interruption point.
    /// (Failure is not expected for our own mapped range; busy wasm would then run until
    /// its next host call, and the teardown grace bounds the wait.)
    pub(crate) fn close(&self) {
        let _ = self.protect(libc::PROT_NONE);
    }

    fn protect(&self, prot: libc::c_int) -> std::io::Result<()> {
        let page = self.memory.data().as_ptr().cast::<u8>().cast_mut().wrapping_add(self.offset);
        // SAFETY: the range is either the whole of a one-page memory or a page of the
        // reservation of `self.memory` past its maximum (see `reserved`), and
        // `self.memory` keeps that mapping alive. No host code reads or writes the range
        // (it is no part of the memory's data); wasm only loads from it at interruption
        // points, and a load faulting there is what we want. Wasmtime changes the
        // protection only of the accessible part, which never reaches the page.
        let r = unsafe { libc::mprotect(page.cast::<libc::c_void>(), PAGE_BYTES as usize, prot) };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_whose_maximum_stays_below_the_page_have_one() {
        for pages in [1, 2, 16384, 32276] {
            assert!(has_reserved_page(false, None, Some(pages)), "{pages}");
        }
        assert!(has_reserved_page(false, Some(16), Some(100)));
    }

    #[test]
    fn other_memories_have_none() {
        assert!(!has_reserved_page(false, None, Some(32277)), "no inaccessible page before it");
        assert!(!has_reserved_page(false, None, Some(32278)), "reaches the page");
        assert!(!has_reserved_page(false, None, Some(32768)));
        assert!(!has_reserved_page(false, None, Some(65536)));
        assert!(!has_reserved_page(false, None, Some(0)), "every load of a 0-page memory traps");
        assert!(!has_reserved_page(false, None, None));
        assert!(!has_reserved_page(true, None, Some(100)));
        assert!(!has_reserved_page(false, Some(0), Some(1 << 20)));
        assert!(!has_reserved_page(false, None, Some(u64::MAX)));
    }
}
