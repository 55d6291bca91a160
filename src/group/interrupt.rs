//! The run's interrupt page: what every interruption point of every thread loads from
//! (see `module/rewrite.rs`, `module/body.rs`). While the run goes on it is readable; ending the
//! run makes it inaccessible, and the next interruption point of every busy thread
//! faults. Wasmtime's signal handler turns that fault into a "memory out of bounds" trap
//! because the address lies in a linear memory of the faulting store (its reservation or
//! guard region; an address outside every memory would make Wasmtime abort).
//!
//! Where the page is depends on the module (`module/reserve.rs`): in the reserved,
//! never accessible part of the run's shared memory, past its maximum, which this file
//! makes readable when the run starts; or, for modules without a suitable shared memory,
//! the whole of a one-page memory the run imports into every instance, readable from
//! birth.

use wasmtime::SharedMemory;

/// Bytes of the interrupt page: one wasm page, a multiple of every host page size.
pub(crate) const PAGE_BYTES: usize = 64 << 10;

/// One page-aligned range of a memory's mapping.
pub(crate) struct InterruptPage {
    /// Keeps the mapping (accessible part, reservation, guards) alive.
    memory: SharedMemory,
    /// From the memory's base, a multiple of [`PAGE_BYTES`].
    offset: usize,
}

impl InterruptPage {
    /// The first page of a one-page memory, readable as it was made.
    pub(crate) fn whole(memory: SharedMemory) -> InterruptPage {
        InterruptPage { memory, offset: 0 }
    }

    /// The page at `offset` from `memory`'s base, made readable.
    ///
    /// The caller promises that `offset..offset + 64 KiB` lies in the address space
    /// Wasmtime reserved for the memory (`module/reserve.rs` checks it against the
    /// engine's reservation) and past the memory's maximum, so it never becomes part of
    /// the accessible memory, whose protection Wasmtime changes as it grows.
    pub(crate) fn reserved(memory: SharedMemory, offset: usize) -> anyhow::Result<InterruptPage> {
        anyhow::ensure!(offset % PAGE_BYTES == 0, "interrupt page offset {offset:#x} is not page-aligned");
        let page = InterruptPage { memory, offset };
        page.protect(libc::PROT_READ).map_err(|e| anyhow::anyhow!("opening the interrupt page: {e}"))?;
        Ok(page)
    }

    /// Makes the page inaccessible: busy threads fault at their next interruption point.
    /// (Failure is not expected for our own mapped range; busy wasm would then run until
    /// its next host call, and the teardown grace bounds the wait.)
    pub(crate) fn close(&self) {
        let _ = self.protect(libc::PROT_NONE);
    }

    fn protect(&self, prot: libc::c_int) -> std::io::Result<()> {
        let page = (self.memory.data().as_ptr() as *mut u8).wrapping_add(self.offset);
        // SAFETY: the range is either the whole of a one-page memory or a page of the
        // reservation of `self.memory` past its maximum (see `reserved`), and
        // `self.memory` keeps that mapping alive. No host code reads or writes the range
        // (it is no part of the memory's data); wasm only loads from it at interruption
        // points, and a load faulting there is what we want. Wasmtime changes the
        // protection only of the accessible part, which never reaches the page.
        let r = unsafe { libc::mprotect(page.cast::<libc::c_void>(), PAGE_BYTES, prot) };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}
