//! Access to the calling thread's linear memory and to the run's shared WASI context.

use wasmtime::{AsContextMut, Caller, Extern};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;
use wiggle::GuestMemory;

use crate::group::{Group, StoreData};

/// Calls `f` with the guest memory of the caller, its group and its tid.
pub(super) fn with_memory<R>(
    caller: &mut Caller<'_, StoreData>,
    f: impl FnOnce(&mut GuestMemory<'_>, &Group, i32) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let group = caller.data().group.clone();
    let tid = caller.data().tid;
    if let Some(shared) = &group.memory {
        return f(&mut GuestMemory::Shared(shared.data()), &group, tid);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => f(&mut GuestMemory::Unshared(m.data_mut(&mut *caller)), &group, tid),
        Some(Extern::SharedMemory(m)) => f(&mut GuestMemory::Shared(m.data()), &group, tid),
        _ => wasmtime::bail!("the module does not export its memory as \"memory\", which WASI needs"),
    }
}

/// Calls `f` with the run's WASI context, locked for the length of the call.
pub(super) fn with_ctx<R>(
    caller: &mut Caller<'_, StoreData>,
    f: impl FnOnce(&mut WasiP1Ctx, &mut GuestMemory<'_>) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    with_memory(caller, |mem, group, _| {
        let mut ctx = group.wasi.lock();
        ctx.set_hostcall_fuel(fuel);
        f(&mut ctx, mem)
    })
}
