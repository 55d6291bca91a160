//! Where interruption points load from when a module's shared memory allows it: the
//! *reserved page*, the 64 KiB at 0x7E15_0000 of the memory's address space, when the memory's maximum stays at least a wasm page below it (at most
//! 32 276 pages, 1.97 GiB; Rust's `wasm32-wasip1-threads` links with 16 384).
//!
//! Wasmtime reserves 4 GiB of address space (plus a guard region) for every 32-bit
//! memory and makes accessible only what the memory has grown to; a memory never grows
//! past its maximum, so the page lies in reserved, inaccessible space for the whole run.
//! An interruption point is `i32.atomic.load (i32.const 0x7E15_0000)` on the shared
//! memory, which Cranelift compiles to one load from the memory's base (in a register in
//! any loop that uses the memory) plus a 32-bit displacement, with no bounds check. The
//! run makes the page readable at its start and inaccessible at its end
//! (`group/interrupt.rs`). A separate interrupt memory costs a second base pointer live
//! across every loop (and an address past 2 GiB a 64-bit constant), which Cranelift
//! spills and reloads in hot loops: about 3 % more instructions on zstd.
//!
//! Why that address: below 2 GiB (a 32-bit displacement), and away from the addresses
//! tests pick to provoke an out-of-bounds access (2^31 - n, powers of two, the top of
//! the address space): a first version used the last 64 KiB below 2 GiB, and this
//! project's own Go test of `(i32.load (i32.const 0x7ffffff0))` stopped trapping.
//!
//! What a guest sees differently: while the run goes on, a load from those 64 KiB (out
//! of bounds, past its maximum) reads zeros instead of trapping. Stores there still
//! trap; no other address changes. Memories with a larger maximum, 64-bit ones, custom
//! page sizes and private memories use a one-page interrupt memory instead.

use crate::engine::MEMORY_RESERVATION;

/// A wasm page: the reserved page is aligned to it, and a maximum leaves one free below.
const PAGE: u64 = 64 << 10;

/// Where the reserved page starts, from the memory's base (see the opening for why
/// there): the address interruption points load from (memarg offset 0).
pub(crate) const RESERVED_PAGE: u32 = 0x7E15_0000;

// Aligned for every host page size up to 64 KiB (`group/interrupt.rs` protects 64 KiB),
// inside every 32-bit memory's reservation, and addressed with a 32-bit displacement.
const _: () = assert!(RESERVED_PAGE as u64 % PAGE == 0);
const _: () = assert!(RESERVED_PAGE as u64 + PAGE <= MEMORY_RESERVATION && RESERVED_PAGE as u64 + PAGE <= 1 << 31);

/// Whether a shared memory of this type has the reserved page: 32-bit, 64 KiB pages, a
/// maximum of at least one page (Cranelift compiles any load from a memory of maximum 0
/// to a trap) that stays a page below the reserved page (so that a load running off the
/// end of a full memory still meets an inaccessible page).
pub(crate) fn has_reserved_page(memory64: bool, page_size_log2: Option<u32>, maximum_pages: Option<u64>) -> bool {
    let standard = !memory64 && page_size_log2.is_none_or(|log2| log2 == 16);
    let max = maximum_pages.and_then(|p| p.checked_mul(PAGE));
    standard && max.is_some_and(|max| max >= PAGE && max <= RESERVED_PAGE as u64 - PAGE)
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
