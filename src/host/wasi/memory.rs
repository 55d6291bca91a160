//! Access to the calling thread's linear memory.

use wasmtime::{Caller, Extern};
use wiggle::GuestMemory;

use crate::group::{Group, StoreData};

/// Calls `f` with the guest memory of the caller, its group and its tid.
pub(super) fn with_memory<R>(
    caller: &mut Caller<'_, StoreData>,
    f: impl FnOnce(&mut GuestMemory<'_>, &Group, i32) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    // Borrowed, not cloned: an `Arc` clone per call makes every thread of the run write
    // one cache line, and tiny calls (`clock_time_get`) then scale negatively.
    let data = caller.data();
    if let Some(shared) = &data.group.memory {
        return f(&mut GuestMemory::Shared(shared.data()), &data.group, data.tid);
    }
    // A module without a shared memory has one thread: the clone costs nothing there.
    let (group, tid) = (data.group.clone(), data.tid);
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => f(&mut GuestMemory::Unshared(m.data_mut(&mut *caller)), &group, tid),
        Some(Extern::SharedMemory(m)) => f(&mut GuestMemory::Shared(m.data()), &group, tid),
        // No memory exported: calls that need none (`proc_exit`, `sched_yield`, ...) work;
        // any access to guest memory is out of bounds, as WASI says.
        _ => f(&mut GuestMemory::Unshared(&mut []), &group, tid),
    }
}
