//! `proc_exit` and `sched_yield`: no context, no lock.

use wasmtime::{Caller, Linker};
use wasmtime_wasi::I32Exit;

use super::P1_MODULE;
use crate::group::StoreData;

pub(super) fn add_to_linker(linker: &mut Linker<StoreData>) -> anyhow::Result<()> {
    // Ends the calling thread with `I32Exit`; the thread's runner then ends the run.
    linker.func_wrap(P1_MODULE, "proc_exit", |_: Caller<'_, StoreData>, code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(I32Exit(code)))
    })?;
    linker.func_wrap(P1_MODULE, "sched_yield", |_: Caller<'_, StoreData>| -> i32 {
        std::thread::yield_now();
        0
    })?;
    Ok(())
}
