//! The host's own functions ([`HostFunc`]), linked into every instance of a run: each
//! call converts the values, shows the callback its [`Caller`] (thread id, guest memory,
//! the run's end), goes through the run's callback gate (so none starts once the run's
//! end was reported to the host), and turns an error or a panic into a trap of the
//! calling thread, named after the function.

use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use wasmtime::{Extern, Linker, ValRaw};

use crate::exit::panic_message;
use crate::group::StoreData;
use crate::hostfunc::{scratch, Caller, CallerMemory, HostFunc, Val, ValKind};
use crate::wait::Terminated;

fn wasm_type(k: ValKind) -> wasmtime::ValType {
    match k {
        ValKind::I32 => wasmtime::ValType::I32,
        ValKind::I64 => wasmtime::ValType::I64,
        ValKind::F32 => wasmtime::ValType::F32,
        ValKind::F64 => wasmtime::ValType::F64,
    }
}

/// The Wasmtime type of `f`.
fn func_type(engine: &wasmtime::Engine, f: &crate::hostfunc::FuncType) -> wasmtime::FuncType {
    wasmtime::FuncType::new(engine, f.params.iter().copied().map(wasm_type), f.results.iter().copied().map(wasm_type))
}

/// Defines each of `funcs` in `linker`. Errors name a function defined twice or one that
/// shadows a function of the library's.
pub(crate) fn define(linker: &mut Linker<StoreData>, funcs: &[HostFunc]) -> anyhow::Result<()> {
    for (index, f) in funcs.iter().enumerate() {
        let ty = func_type(linker.engine(), &f.ty);
        let func = Arc::new(f.clone());
        let index = index as u32;
        // SAFETY: `call` reads the first `func.ty.params.len()` values of `raw` as the
        // parameters of `ty`, which was made from `func.ty`, and writes the first
        // `func.ty.results.len()` as its results, all numbers: the contract of
        // `Func::new_unchecked` (Wasmtime sizes `raw` for the larger of the two).
        unsafe {
            linker.func_new_unchecked(&f.module, &f.name, ty, move |caller, raw| call(&func, index, caller, raw))
        }?;
    }
    Ok(())
}

/// One call of host function `f` (number `index` of the run's) by the guest thread of
/// `caller`, with its parameters in `raw` and its results to go there.
fn call(
    f: &HostFunc,
    index: u32,
    mut caller: wasmtime::Caller<'_, StoreData>,
    raw: &mut [MaybeUninit<ValRaw>],
) -> wasmtime::Result<()> {
    let (nparams, nresults) = (f.ty.params.len(), f.ty.results.len());
    scratch(nparams + nresults, Val::I32(0), |vals| {
        let (args, outs) = vals.split_at_mut(nparams);
        for ((arg, &kind), v) in args.iter_mut().zip(&f.ty.params).zip(raw.iter()) {
            // SAFETY: Wasmtime initialised the first `nparams` values with the arguments
            // (the contract of `Func::new_unchecked`).
            *arg = Val::from_raw(kind, unsafe { v.assume_init_ref() });
        }
        for (out, &kind) in outs.iter_mut().zip(&f.ty.results) {
            *out = Val::zero(kind);
        }
        // The memory the caller sees, and the store's data beside it.
        let shared = caller.data().group.memory.is_some();
        let export = if shared { None } else { caller.get_export("memory") };
        match export {
            Some(Extern::Memory(m)) => {
                let (bytes, data) = m.data_and_store_mut(&mut caller);
                invoke(f, index, data, CallerMemory::Unshared(bytes), args, outs)
            }
            _ => {
                let data = caller.data();
                let memory = data.group.memory.as_ref().map_or(CallerMemory::None, |m| CallerMemory::Shared(m.data()));
                invoke(f, index, data, memory, args, outs)
            }
        }?;
        for (slot, out) in raw.iter_mut().zip(outs.iter()) {
            *slot = MaybeUninit::new(out.to_raw());
        }
        Ok(())
    })
}

/// Runs `f`'s callback for the thread of `data`, which sees `memory`, through the run's
/// callback gate, and checks the results it set.
fn invoke(
    f: &HostFunc,
    index: u32,
    data: &StoreData,
    memory: CallerMemory<'_>,
    args: &[Val],
    outs: &mut [Val],
) -> wasmtime::Result<()> {
    let group = &data.group;
    let slot = data.waiter.slot();
    group.teardown.signal.bail_if_ending()?;
    let mut view = Caller { tid: data.tid, memory, signal: &group.teardown.signal };
    let what = || format!("host function `{}::{}`", f.module, f.name);
    slot.in_host_call(Some(index));
    let ran = group.call_host(|| catch_unwind(AssertUnwindSafe(|| (f.callback)(&mut view, args, outs))));
    slot.in_host_call(None);
    match ran {
        // The run's end was reported to the host: no callback of it starts any more.
        None => return Err(wasmtime::Error::new(Terminated)),
        Some(Err(panic)) => wasmtime::bail!("{} panicked: {}", what(), panic_message(&*panic)),
        Some(Ok(Err(e))) => {
            // A host function that gave up because the run is ending stops like any wait.
            group.teardown.signal.bail_if_ending()?;
            wasmtime::bail!("{} failed: {e:#}", what())
        }
        // One that returned after the run's end was decided: the thread stops here.
        Some(Ok(Ok(()))) => group.teardown.signal.bail_if_ending()?,
    }
    for (i, (out, &kind)) in outs.iter().zip(&f.ty.results).enumerate() {
        if out.kind() != kind {
            wasmtime::bail!("{} set result {i} to an {}, but it returns an {kind} there", what(), out.kind());
        }
    }
    Ok(())
}
