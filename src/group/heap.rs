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
//! next spawns' allocations are carved from (10 000 spawns: 29 000 `mprotect` calls for
//! the heap before, 7 300 after).
//!
//! Where the room is already there, it costs an allocation and a free; glibc also
//! consolidates the arena's fast bins then, as for any free of that size. It gains
//! nothing, and costs an `mmap` and a `munmap` every [`EVERY`] spawns, where the host
//! lowered glibc's mmap threshold to [`ROOM`] or below (`M_MMAP_THRESHOLD`), or where
//! Rust's global allocator is not glibc's `malloc`. It is done only with glibc.

/// What is made sure to be free: room for about [`EVERY`] threads' allocations. The free
/// top it leaves stays under glibc's default trim threshold (128 KiB), so freeing the
/// block does not make glibc give the room back at once.
#[cfg(target_env = "gnu")]
const ROOM: usize = 64 * 1024;
/// Spawns of one thread between two checks.
#[cfg(target_env = "gnu")]
const EVERY: u32 = 8;

#[cfg(target_env = "gnu")]
thread_local! {
    /// Spawns made by this thread, modulo [`EVERY`].
    static SPAWNS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Called by a spawner before it makes a thread's store: every [`EVERY`] calls, makes
/// sure the calling thread's heap has [`ROOM`] bytes free in one piece.
#[cfg(target_env = "gnu")]
pub(super) fn make_room() {
    let n = SPAWNS.get();
    SPAWNS.set((n + 1) % EVERY);
    if n != 0 {
        return;
    }
    let layout = std::alloc::Layout::from_size_align(ROOM, 16).expect("a valid layout");
    // SAFETY: a non-zero-sized layout; the block is freed with the same layout, unread.
    unsafe {
        let block = std::alloc::alloc(layout);
        if !block.is_null() {
            std::alloc::dealloc(std::hint::black_box(block), layout);
        }
    }
}

/// Other C libraries' allocators grow their heaps their own way.
#[cfg(not(target_env = "gnu"))]
pub(super) fn make_room() {}
