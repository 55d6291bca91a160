//! Access to the calling thread's linear memory.

use wasmtime::{Caller, Extern};
use wiggle::GuestMemory;

use super::Ctx;

use crate::group::StoreData;
use crate::wait::WaitSlot;

/// Calls `f` with the guest memory of the caller and a [`Ctx`] of its group, tid and
/// wait slot.
pub(super) fn with_memory<R>(
    caller: &mut Caller<'_, StoreData>,
    f: impl FnOnce(&mut GuestMemory<'_>, &mut Ctx<'_>) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    // Borrowed, not cloned: an `Arc` clone per call makes every thread of the run write
    // one cache line, and tiny calls (`clock_time_get`) then scale negatively.
    let data = caller.data();
    if let Some(shared) = &data.group.memory {
        let mut ctx = Ctx { group: &data.group, tid: data.tid, slot: data.waiter.slot() };
        return f(&mut GuestMemory::Shared(shared.data()), &mut ctx);
    }
    // A module without a shared memory has one thread: the clones cost nothing there.
    let (group, tid, slot): (_, _, std::sync::Arc<WaitSlot>) =
        (data.group.clone(), data.tid, data.waiter.slot().clone());
    let mut ctx = Ctx { group: &group, tid, slot: &slot };
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => f(&mut GuestMemory::Unshared(m.data_mut(&mut *caller)), &mut ctx),
        Some(Extern::SharedMemory(m)) => f(&mut GuestMemory::Shared(m.data()), &mut ctx),
        // No memory exported: calls that need none (`proc_exit`, `sched_yield`, ...) work;
        // any access to guest memory is out of bounds, as WASI says.
        _ => f(&mut GuestMemory::Unshared(&mut []), &mut ctx),
    }
}
