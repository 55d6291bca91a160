//! `wasi::thread-spawn(arg) -> tid`: a new thread of the caller's group (see
//! `group/thread.rs`). Every failure is a negative return, never a trap.

use wasmtime::{Caller, Linker};

use super::SPAWN_IMPORT;
use crate::group::StoreData;

pub(super) fn add_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    let (module, name) = SPAWN_IMPORT;
    linker.func_wrap(module, name, |mut caller: Caller<'_, StoreData>, arg: i32| -> wasmtime::Result<i32> {
        let group = caller.data().group.clone();
        if let Some(request) = caller.data_mut().adopt_request.as_mut() {
            // The instance's main store is adopting a host thread (`group/adopt.rs`).
            return group.adopt_spawn(request, arg);
        }
        group.spawn(caller.data().tid, arg)
    })?;
    Ok(())
}
