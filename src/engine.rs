//! The engine: one Wasmtime engine configured for wasi-threads, plus the host functions
//! every module of it links against. Cheap to clone; safe to share between host threads.

use std::sync::Arc;

use anyhow::Result;
use wasmtime::{Linker, OptLevel};

use crate::pool::Pool;
use crate::run::StoreData;

/// Options for [`Engine::new`]. The defaults suit most hosts.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Cranelift optimisation: 0 = none, 1 = speed (default), 2 = speed and size.
    pub opt_level: u8,
    /// Use Wasmtime's on-disk compilation cache (default off).
    pub cache: bool,
    /// Largest wasm stack of one guest thread, in bytes (default 1 MiB). Deeper recursion
    /// traps with "call stack exhausted"; it never crashes the host.
    pub max_wasm_stack: usize,
    /// While a run is ending, how often threads that have not stopped yet are woken again
    /// (bumping the epoch for busy threads, notifying waiters). Nothing ticks otherwise.
    pub interrupt_tick: std::time::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            opt_level: 1,
            cache: false,
            max_wasm_stack: 1 << 20,
            interrupt_tick: std::time::Duration::from_millis(1),
        }
    }
}

/// Extra native stack each guest OS thread gets above its wasm stack, for host code
/// (WASI calls) that runs on the same thread.
const HOST_STACK_MARGIN: usize = 2 << 20;

pub(crate) struct EngineInner {
    pub(crate) wasmtime: wasmtime::Engine,
    /// WASI preview 1, `wasi.thread-spawn` and our interruptible `proc_exit`, `poll_oneoff` etc.
    pub(crate) linker: Linker<StoreData>,
    /// OS threads for guest threads, each with a stack for `max_wasm_stack` plus host code.
    pub(crate) pool: Arc<Pool>,
    pub(crate) kick_interval: std::time::Duration,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        // No run is left (each holds the engine), so idle pool threads can go now.
        self.pool.shutdown();
    }
}

/// A compilation and execution environment. Clones share the same engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

impl Engine {
    pub fn new(config: &EngineConfig) -> Result<Engine> {
        let mut c = wasmtime::Config::new();
        c.wasm_threads(true)
            .shared_memory(true)
            // Busy guest threads are stopped by bumping the epoch when (and only when) a run
            // ends; each store's deadline callback decides whether its run is over.
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            .cranelift_opt_level(match config.opt_level {
                0 => OptLevel::None,
                1 => OptLevel::Speed,
                2 => OptLevel::SpeedAndSize,
                n => anyhow::bail!("opt level must be 0, 1 or 2, not {n}"),
            });
        if config.cache {
            let cache = wasmtime::Cache::from_file(None)?;
            c.cache(Some(cache));
        }
        let wasmtime = wasmtime::Engine::new(&c)?;
        let mut linker = Linker::new(&wasmtime);
        crate::wasi::add_to_linker(&mut linker)?;
        Ok(Engine {
            inner: Arc::new(EngineInner {
                wasmtime,
                linker,
                pool: Pool::new(config.max_wasm_stack + HOST_STACK_MARGIN),
                kick_interval: config.interrupt_tick.max(std::time::Duration::from_micros(50)),
            }),
        })
    }

    /// The underlying Wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.wasmtime
    }
}
