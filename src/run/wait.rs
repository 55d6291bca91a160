//! The host side of rewritten `memory.atomic.wait32/64` instructions (see `rewrite.rs`):
//! the same wait, but registered with the run so that teardown can wake it.

use std::time::Duration;

use wasmtime::{Caller, Linker, WaitResult};

use super::{StoreData, Terminated};
use crate::rewrite::{WAIT_MODULE, WaitImport};

/// Defines the host function for one rewritten wait instruction.
pub(crate) fn define(linker: &mut Linker<StoreData>, w: WaitImport) -> anyhow::Result<()> {
    let offset = w.offset;
    if w.wide {
        linker.func_wrap(
            WAIT_MODULE,
            &w.name(),
            move |caller: Caller<'_, StoreData>, addr: i32, expected: i64, timeout: i64| {
                wait(&caller, addr, offset, timeout, |mem, a, t| mem.atomic_wait64(a, expected as u64, t))
            },
        )?;
    } else {
        linker.func_wrap(
            WAIT_MODULE,
            &w.name(),
            move |caller: Caller<'_, StoreData>, addr: i32, expected: i32, timeout: i64| {
                wait(&caller, addr, offset, timeout, |mem, a, t| mem.atomic_wait32(a, expected as u32, t))
            },
        )?;
    }
    Ok(())
}

fn wait(
    caller: &Caller<'_, StoreData>,
    addr: i32,
    offset: u64,
    timeout_ns: i64,
    op: impl FnOnce(&wasmtime::SharedMemory, u64, Option<Duration>) -> Result<WaitResult, wasmtime::Trap>,
) -> wasmtime::Result<i32> {
    let StoreData { run, tid, .. } = caller.data();
    // The rewrite only happens when memory 0 is an imported shared memory.
    let Some(mem) = &run.memory else {
        return Err(wasmtime::Trap::AtomicWaitNonSharedMemory.into());
    };
    // Effective address as the instruction computes it; out-of-range traps in `op`.
    let addr = (addr as u32 as u64).saturating_add(offset);
    // Negative timeouts mean "forever".
    let timeout = u64::try_from(timeout_ns).ok().map(Duration::from_nanos);
    run.waiters.lock().insert(*tid, addr);
    let result = if run.terminating() { Err(None) } else { op(mem, addr, timeout).map_err(Some) };
    run.waiters.lock().remove(tid);
    if run.terminating() {
        return Err(wasmtime::Error::new(Terminated));
    }
    match result {
        Ok(r) => Ok(r as i32),
        Err(Some(trap)) => Err(trap.into()),
        Err(None) => Err(wasmtime::Error::new(Terminated)),
    }
}
