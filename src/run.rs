//! A run: the public handle, and the one place that joins a [`Module`], its [`Engine`] and
//! a thread [`Group`]: it creates the run's memory and WASI context, links the module,
//! hands the group what it needs and starts the main thread.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{bail, Result};
use parking_lot::Mutex;
use wasmtime::error::Context as _;
use wasmtime::{MemoryType, SharedMemory};

use crate::config::RunConfig;
use crate::exit::{ExitKind, RunExit};
use crate::group::{Group, InterruptPage, Recorder, Setup, INTERRUPT_PAGE_BYTES};
use crate::host::atomics::{ATOMICS_MODULE, INTERRUPT_MEMORY};
use crate::io::Stdio;
use crate::module::{Interrupt, MemoryImport, Module, RESERVED_PAGE};

/// A started run. [`Run::wait`] returns how it ended; dropping a run that is still going
/// cancels it and waits for its threads. All methods may be called from any thread.
pub struct Run {
    group: Arc<Group>,
    deadline: Option<Instant>,
    /// The background supervisor of [`Run::start_background`].
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

/// Wasm page size: memories here are 32-bit with 64 KiB pages.
const WASM_PAGE: u64 = 65536;

/// The shared memory of a run: the module's type, its maximum lowered to `max_memory`.
fn shared_memory(engine: &wasmtime::Engine, m: &MemoryImport, max_memory: Option<u64>) -> Result<SharedMemory> {
    let declared = m.ty.maximum().unwrap_or(m.ty.minimum());
    let cap = max_memory.map_or(declared, |bytes| declared.min(bytes / WASM_PAGE));
    if cap < m.ty.minimum() {
        bail!(
            "the memory limit ({} bytes) is below the module's minimum memory ({} pages of 64 KiB)",
            max_memory.unwrap_or(0),
            m.ty.minimum()
        );
    }
    let ty = MemoryType::shared(m.ty.minimum() as u32, cap as u32);
    Ok(SharedMemory::new(engine, ty)
        .with_context(|| format!("creating the shared memory `{}::{}`", m.module, m.name))?)
}

/// The guest's environment, `KEY=value` each: the host's first if inherited, then the
/// config's own.
fn guest_env(config: &RunConfig) -> Vec<String> {
    let inherited = config.inherit_env.then(std::env::vars_os).into_iter().flatten();
    let inherited = inherited.filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    inherited.chain(config.env.iter().cloned()).map(|(k, v)| format!("{k}={v}")).collect()
}

impl Run {
    /// Instantiates the module for the main thread and starts `_start` on a new OS thread.
    /// The first [`Run::wait`] supervises the run (enforces the timeout, stops threads).
    /// Errors (link errors, a missing `_start`, …) mean nothing started.
    pub fn start(module: &Module, config: &RunConfig) -> Result<Run> {
        let inner = &module.inner;
        if let Err(why) = &inner.start {
            bail!("cannot run this module: {why}");
        }
        let engine = inner.engine.wasmtime();
        let memory = match &inner.memory {
            Some(m) if m.ty.is_shared() => Some(shared_memory(engine, m, config.max_memory)?),
            _ => None,
        };
        // The page every interruption point loads from (`group/interrupt.rs`).
        let (interrupt, page_memory) = match (inner.interrupt, &memory) {
            (Interrupt::Reserved, Some(mem)) => (InterruptPage::reserved(mem.clone(), RESERVED_PAGE as usize)?, None),
            (Interrupt::Reserved, None) => bail!("the module's interruption points need its shared memory"),
            (Interrupt::Page, _) => {
                let page = MemoryType::shared(1, (INTERRUPT_PAGE_BYTES as u64 / WASM_PAGE) as u32);
                let page = SharedMemory::new(engine, page).context("creating the interrupt page")?;
                (InterruptPage::whole(page.clone()), Some(page))
            }
        };
        let group = Group::new(Setup {
            engine: engine.clone(),
            interrupt,
            epoch_interruption: inner.engine.epoch_interruption(),
            pool: inner.engine.pool().clone(),
            interrupt_tick: inner.engine.interrupt_tick(),
            can_spawn: inner.thread_start.is_ok(),
            memory,
            args: if config.args.is_empty() { vec!["wasm".to_string()] } else { config.args.clone() },
            env: guest_env(config),
            fds: crate::host::open_fds(config)?,
            stdio: Stdio::open(&config.stdin, &config.stdout, &config.stderr)?,
            max_threads: config.max_threads,
            max_memory: config.max_memory,
            max_table_elements: config.max_table_elements,
            on_thread_exit: config.on_thread_exit.clone(),
            on_thread_start: config.on_thread_start.clone(),
            on_diagnostic: config.on_diagnostic.clone(),
            max_diagnostics: crate::config::MAX_DIAGNOSTICS,
            teardown_grace: config.teardown_grace,
            offsets: inner.offsets.clone(),
            coredump: config.coredump_path.as_deref().map(Recorder::open).transpose()?,
        });
        let mut store = group.new_store(0);
        let mut linker = inner.linker.clone();
        if let Some(page) = page_memory {
            linker.define(&store, ATOMICS_MODULE, INTERRUPT_MEMORY, page)?;
        }
        match (&inner.memory, &group.memory) {
            (Some(m), Some(mem)) => {
                // A shared memory belongs to no store, so every thread's store can use this
                // definition, though it is made through the main thread's store.
                linker.define(&store, &m.module, &m.name, mem.clone())?;
            }
            (Some(m), None) => {
                let mem = wasmtime::Memory::new(&mut store, m.ty.clone())
                    .with_context(|| format!("creating the memory `{}::{}`", m.module, m.name))?;
                linker.define(&store, &m.module, &m.name, mem)?;
            }
            _ => {}
        }
        group.set_pre(linker.instantiate_pre(&inner.wasmtime).context("linking the module")?);
        group.start_main(store)?;
        Ok(Run { group, deadline: config.timeout.map(|t| Instant::now() + t), supervisor: Mutex::new(None) })
    }

    /// Like [`Run::start`], plus a supervisor thread that enforces the timeout and stops
    /// the threads as soon as the run ends, whether or not anyone waits.
    pub fn start_background(module: &Module, config: &RunConfig) -> Result<Run> {
        let run = Run::start(module, config)?;
        *run.supervisor.lock() = run.group.supervise_in_background(run.deadline);
        Ok(run)
    }

    /// Blocks until the run ended and every thread of it has been joined. May be called
    /// any number of times, from any threads; each call returns the same outcome.
    pub fn wait(&self) -> RunExit {
        self.group.wait(self.deadline)
    }

    /// The outcome if the run has ended and all its threads are joined, else `None`.
    pub fn try_wait(&self) -> Option<RunExit> {
        self.group.try_wait(self.deadline)
    }

    /// Ends the run with [`ExitKind::Cancelled`] unless it already ended. Returns at once;
    /// the threads stop within milliseconds. Harmless after the run ended.
    pub fn cancel(&self) {
        self.group.finish(RunExit::host(ExitKind::Cancelled));
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            self.cancel();
        }
        self.wait();
        if let Some(h) = self.supervisor.lock().take() {
            let _ = h.join();
        }
    }
}
