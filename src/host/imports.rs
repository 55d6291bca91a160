//! The host's own functions ([`HostFunc`]), linked into every instance of a run: each
//! call converts the values, shows the callback its [`Caller`] (thread id, guest memory,
//! the run's end), goes through the run's callback gate (so none starts once the run's
//! end was reported to the host), and turns an error or a panic into a trap of the
//! calling thread, named after the function.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use wasmtime::{Extern, Linker};

use crate::exit::panic_message;
use crate::group::StoreData;
use crate::hostfunc::{Caller, CallerMemory, HostFunc, Val, ValKind};
use crate::wait::Terminated;

fn wasm_type(k: ValKind) -> wasmtime::ValType {
    match k {
        ValKind::I32 => wasmtime::ValType::I32,
        ValKind::I64 => wasmtime::ValType::I64,
        ValKind::F32 => wasmtime::ValType::F32,
        ValKind::F64 => wasmtime::ValType::F64,
    }
}

/// `v` as a [`Val`]; the linker checked its type against the function's.
fn from_wasm(v: &wasmtime::Val) -> Val {
    match v {
        wasmtime::Val::I32(x) => Val::I32(*x),
        wasmtime::Val::I64(x) => Val::I64(*x),
        wasmtime::Val::F32(x) => Val::F32(f32::from_bits(*x)),
        wasmtime::Val::F64(x) => Val::F64(f64::from_bits(*x)),
        // Host functions and calls only have the four number types.
        _ => Val::I32(0),
    }
}

fn to_wasm(v: Val) -> wasmtime::Val {
    match v {
        Val::I32(x) => wasmtime::Val::I32(x),
        Val::I64(x) => wasmtime::Val::I64(x),
        Val::F32(x) => wasmtime::Val::F32(x.to_bits()),
        Val::F64(x) => wasmtime::Val::F64(x.to_bits()),
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
        linker.func_new(&f.module, &f.name, ty, move |mut caller, params, results| {
            call(&func, index, &mut caller, params, results)
        })?;
    }
    Ok(())
}

/// One call of host function `f` (number `index` of the run's) by the guest thread of
/// `caller`.
fn call(
    f: &HostFunc,
    index: u32,
    caller: &mut wasmtime::Caller<'_, StoreData>,
    params: &[wasmtime::Val],
    results: &mut [wasmtime::Val],
) -> wasmtime::Result<()> {
    let args: Vec<Val> = params.iter().map(from_wasm).collect();
    let mut outs: Vec<Val> = f.ty.results.iter().map(|&k| Val::zero(k)).collect();
    let group = caller.data().group.clone();
    let tid = caller.data().tid;
    let slot = caller.data().waiter.slot().clone();
    group.teardown.signal.bail_if_ending()?;
    let memory = match &group.memory {
        Some(shared) => CallerMemory::Shared(shared.data()),
        None => match caller.get_export("memory") {
            Some(Extern::Memory(m)) => CallerMemory::Unshared(m.data_mut(&mut *caller)),
            _ => CallerMemory::None,
        },
    };
    let mut view = Caller { tid, memory, signal: &group.teardown.signal };
    let what = || format!("host function `{}::{}`", f.module, f.name);
    slot.in_host_call(Some(index));
    let ran = group.call_host(|| catch_unwind(AssertUnwindSafe(|| (f.callback)(&mut view, &args, &mut outs))));
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
        Some(Ok(Ok(()))) => {}
    }
    for (i, (out, &kind)) in outs.iter().zip(&f.ty.results).enumerate() {
        if out.kind() != kind {
            wasmtime::bail!("{} set result {i} to an {}, but it returns an {kind} there", what(), out.kind());
        }
        results[i] = to_wasm(*out);
    }
    Ok(())
}
