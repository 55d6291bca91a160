//! Launching a run or an instance: the one place that joins a [`Module`], its engine, a
//! [`RunConfig`] and a new thread [`Group`]. It creates the shared memory, the interrupt
//! page and the WASI state, links the library's functions, the host's functions and the
//! memory, and hands back the group with the main thread's store, not yet instantiated.

use std::sync::Arc;

use anyhow::Result;
use wasmtime::error::Context as _;
use wasmtime::{MemoryType, SharedMemory, Store};

use crate::config::RunConfig;
use crate::coredump::Recorder;
use crate::error::{error, ErrorKind, ResultKind};
use crate::group::{Group, Program, StoreData, Teardown};
use crate::hooks::{Gate, RunHooks};
use crate::host::{INTERNAL_MODULE, P1_MODULE, SPAWN_IMPORT};
use crate::hostfunc::HostFunc;
use crate::interrupt;
use crate::limits::{InstanceCost, Limits, WriteQuota};
use crate::module::{MemoryImport, Module};
use crate::wasi::{Output, WasiState};

/// A launched group: its main thread's store (tid 0) and the gate of its callbacks.
pub(crate) struct Launch {
    pub(crate) group: Arc<Group>,
    pub(crate) store: Store<StoreData>,
    pub(crate) gate: Arc<Gate>,
}

/// `out`, its callback (if it is one) made through `gate`.
fn gated(out: &Output, gate: &Arc<Gate>) -> Output {
    match out {
        Output::Callback(cb) => {
            let (cb, gate) = (cb.clone(), gate.clone());
            Output::Callback(Arc::new(move |tid, bytes| {
                gate.call(|| cb(tid, bytes));
            }))
        }
        other => other.clone(),
    }
}

/// The shared memory of a run: the module's type, its maximum lowered to the limits'.
fn shared_memory(engine: &wasmtime::Engine, m: &MemoryImport, limits: &Limits) -> Result<SharedMemory> {
    let cap = limits.memory_pages(m.ty.maximum().unwrap_or(m.ty.minimum()));
    if cap < m.ty.minimum() {
        return Err(error(
            ErrorKind::Limit,
            format!(
                "the memory limit ({} bytes) is below the module's minimum memory ({} pages of 64 KiB)",
                limits.max_memory.unwrap_or(0),
                m.ty.minimum()
            ),
        ));
    }
    let ty = MemoryType::shared(m.ty.minimum() as u32, cap as u32);
    // The OS refused the memory (or its reservation).
    SharedMemory::new(engine, ty)
        .with_context(|| format!("creating the shared memory `{}::{}`", m.module, m.name))
        .kind(ErrorKind::Limit)
}

/// The guest's environment, `KEY=value` each: the host's first if inherited, then the
/// config's own.
fn guest_env(config: &RunConfig) -> Vec<String> {
    let inherited = config.inherit_env.then(std::env::vars_os).into_iter().flatten();
    let inherited = inherited.filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    inherited.chain(config.env.iter().cloned()).map(|(k, v)| format!("{k}={v}")).collect()
}

/// The host's functions that `module` imports, each checked against the import's type.
/// Errors name a function the module needs that the config does not define (with the
/// type the module wants), one defined with another type, one defined twice, and one
/// that would replace a function of the library.
fn host_funcs<'c>(module: &Module, config: &'c RunConfig) -> Result<Vec<&'c HostFunc>> {
    for (i, f) in config.imports.iter().enumerate() {
        let ours = f.module == P1_MODULE
            || f.module == INTERNAL_MODULE
            || (f.module.as_str(), f.name.as_str()) == SPAWN_IMPORT;
        if ours {
            return Err(error(
                ErrorKind::Misuse,
                format!(
                    "host function `{}::{}` cannot be defined: wasithreads provides that import itself",
                    f.module, f.name
                ),
            ));
        }
        if config.imports[..i].iter().any(|g| (&g.module, &g.name) == (&f.module, &f.name)) {
            return Err(error(ErrorKind::Misuse, format!("host function `{}::{}` is defined twice", f.module, f.name)));
        }
    }
    let mut used = Vec::new();
    for imp in &module.inner.host_imports {
        let Some(f) = config.imports.iter().find(|f| (&f.module, &f.name) == (&imp.module, &imp.name)) else {
            return Err(error(
                ErrorKind::Link,
                format!(
                    "unknown import `{}::{}` of type {}: wasithreads provides `{P1_MODULE}` functions, `wasi::thread-spawn` \
                     and one memory, and the host defines no function of that name",
                    imp.module, imp.name, imp.wasm_ty
                ),
            ));
        };
        if imp.ty.as_ref() != Some(&f.ty) {
            return Err(error(
                ErrorKind::Link,
                format!(
                    "host function `{}::{}` is defined as {}, but the module imports it as {}",
                    imp.module, imp.name, f.ty, imp.wasm_ty
                ),
            ));
        }
        used.push(f);
    }
    Ok(used)
}

/// Creates the group of a run or instance of `module` with `config`, linked and ready
/// for its main thread to instantiate the module in the returned store.
pub(crate) fn launch(module: &Module, config: &RunConfig) -> Result<Launch> {
    let inner = &module.inner;
    let host = host_funcs(module, config)?;
    let engine = inner.engine.wasmtime();
    let memory = match &inner.memory {
        Some(m) if m.ty.is_shared() => Some(shared_memory(engine, m, &config.limits)?),
        _ => None,
    };
    let (page, page_memory) = interrupt::Page::open(inner.interrupt, engine, memory.as_ref())?;
    let epoch = inner.engine.epoch_interruption().then(|| engine.clone());
    let gate = Arc::new(Gate::default());
    let program = Program {
        engine: engine.clone(),
        pool: inner.engine.pool().clone(),
        can_spawn: inner.thread_start.is_ok(),
        offsets: inner.offsets.clone(),
        instance: InstanceCost {
            memories: u64::from(inner.wasmtime.resources_required().num_memories),
            host_bytes: inner.instance_bytes,
        },
    };
    let group = Group::new(
        program,
        memory,
        Teardown::new(page, epoch, inner.engine.interrupt_tick(), config.teardown_grace),
        &config.limits,
        RunHooks::new(config.hooks.clone(), gate.clone()),
        WasiState::new(
            if config.args.is_empty() { vec!["wasm".to_string()] } else { config.args.clone() },
            guest_env(config),
            &config.sockets,
            &config.preopens,
            config.limits.max_fds,
            WriteQuota::new(&config.limits),
            &config.stdin,
            &gated(&config.stdout, &gate),
            &gated(&config.stderr, &gate),
        )?,
        config.coredump_path.as_deref().map(Recorder::open).transpose()?,
    );
    let mut store =
        group.new_store(0).map_err(|why| error(ErrorKind::Limit, format!("the main thread cannot start: {why}")))?;
    let mut linker = inner.linker.clone();
    if let Some(page) = page_memory {
        linker.define(&store, INTERNAL_MODULE, interrupt::MEMORY_IMPORT, page)?;
    }
    match (&inner.memory, &group.memory) {
        (Some(m), Some(mem)) => {
            // A shared memory belongs to no store, so every thread's store can use this
            // definition, though it is made through the main thread's store.
            linker.define(&store, &m.module, &m.name, mem.clone())?;
        }
        (Some(m), None) => {
            let mem = wasmtime::Memory::new(&mut store, m.ty.clone())
                .with_context(|| format!("creating the memory `{}::{}`", m.module, m.name))
                .kind(ErrorKind::Limit)?;
            linker.define(&store, &m.module, &m.name, mem)?;
        }
        _ => {}
    }
    let host: Vec<HostFunc> = host.into_iter().cloned().collect();
    crate::host::define_host_funcs(&mut linker, &host).kind(ErrorKind::Link)?;
    group.set_host_names(host.iter().map(|f| format!("{}::{}", f.module, f.name)).collect());
    group.set_pre(linker.instantiate_pre(&inner.wasmtime).context("linking the module").kind(ErrorKind::Link)?);
    Ok(Launch { group, store, gate })
}
