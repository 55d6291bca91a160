//! `wasi::thread-spawn(arg) -> tid`: a new thread of the caller's group (see
//! `group/thread.rs`). Every failure is a negative return, never a trap.

use wasmtime::{Caller, Linker};

use super::SPAWN_IMPORT;
use crate::group::StoreData;

pub(super) fn add_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    let (module, name) = SPAWN_IMPORT;
    linker.func_wrap(module, name, |caller: Caller<'_, StoreData>, arg: i32| -> wasmtime::Result<i32> {
        let group = caller.data().group.clone();
        group.spawn(caller.data().tid, arg)
    })?;
    Ok(())
}
