//! Room on the spawner's heap for the next threads' stores, asked for in one piece.
//!
//! A spawn makes the new thread's store and instance on the spawning thread: 10-20 KiB
//! of small allocations. glibc serves a thread's allocations from a per-thread arena,
//! which it extends by exactly what the allocation at hand lacks, one `mprotect` per page
//! or two (it pads only the main arena's growth): about two `mprotect` calls per spawn,
//! each taking the process's memory-map lock and flushing the other CPUs' TLBs, on the
//! path of a guest starting threads in a loop. Every [`EVERY`] spawns of a thread,
//! allocating [`ROOM`] bytes and freeing them at once extends its arena by what is
//! missing in one call; the freed block merges back into the arena's free top, where the
//! next spawns' allocations are carved from. Where the room is already there, this costs
//! an allocation and a free, and nothing more with other allocators (whose thread
//! caches serve the block).

use std::alloc::Layout;
use std::cell::Cell;

/// What is made sure to be free: room for about [`EVERY`] threads' allocations. The free
/// top it leaves stays under glibc's trim threshold (128 KiB), so freeing the block never
/// makes glibc give the room back at once.
const ROOM: usize = 64 * 1024;
/// Spawns of one thread between two checks.
const EVERY: u32 = 8;

thread_local! {
    /// Spawns made by this thread, modulo [`EVERY`].
    static SPAWNS: Cell<u32> = const { Cell::new(0) };
}

/// Called by a spawner before it makes a thread's store: every [`EVERY`] calls, makes
/// sure the calling thread's heap has [`ROOM`] bytes free in one piece.
pub(super) fn make_room() {
    let n = SPAWNS.get();
    SPAWNS.set((n + 1) % EVERY);
    if n != 0 {
        return;
    }
    let layout = Layout::from_size_align(ROOM, 16).expect("a valid layout");
    // SAFETY: a non-zero-sized layout; the block is freed with the same layout, unread.
    unsafe {
        let block = std::alloc::alloc(layout);
        if !block.is_null() {
            std::alloc::dealloc(std::hint::black_box(block), layout);
        }
    }
}
