//! The engine: one Wasmtime engine configured for wasi-threads, and the pool of OS
//! threads its guest threads run on. Cheap to clone; safe to share between host threads.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use wasmtime::OptLevel;

use crate::error::{error, ErrorKind, ResultKind};
use crate::interrupt;
use crate::pool::Pool;

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
    /// The interrupt tick: while a run is ending, how often threads that have not stopped
    /// yet are woken again (bumping the epoch for busy threads, notifying waiters). At
    /// least 50 µs. Nothing ticks otherwise.
    pub interrupt_tick: Duration,
    /// Stop busy wasm with Wasmtime's epoch checks instead of the interrupt page (see
    /// `module/rewrite.rs`): about 5x the cost at every loop head and function entry, for
    /// tools that cannot deliver a fault in JIT code to Wasmtime's signal handler (valgrind).
    /// Also on when the environment variable `WASITHREADS_EPOCH_INTERRUPTION=1` is set.
    pub epoch_interruption: bool,
    /// The largest module [`Module::new`](crate::Module::new) loads, in bytes of
    /// WebAssembly binary (WAT text is converted first); `None` (the default) for no
    /// limit. A bigger module is refused before it is validated or compiled, which take
    /// time and memory in proportion to it (BENCHMARKS.md, "Loads"): for hosts that load
    /// untrusted modules.
    /// Deserialized modules are not checked.
    pub max_module_bytes: Option<u64>,
    /// The most functions, imported and defined, a module [`Module::new`](crate::Module::new)
    /// loads may have; `None` (the default) for no limit. Checked with `max_module_bytes`.
    pub max_functions: Option<u64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            opt_level: 1,
            cache: false,
            max_wasm_stack: 1 << 20,
            interrupt_tick: Duration::from_millis(1),
            epoch_interruption: false,
            max_module_bytes: None,
            max_functions: None,
        }
    }
}

/// Extra native stack each guest OS thread gets above its wasm stack, for host code
/// (WASI calls) that runs on the same thread.
const HOST_STACK_MARGIN: usize = 2 << 20;

/// The largest `max_wasm_stack` accepted: every guest thread reserves this much stack.
pub const MAX_WASM_STACK_LIMIT: usize = 256 << 20;

/// Virtual memory Wasmtime reserves for each linear memory, and the guard region after
/// it (Wasmtime's defaults on 64-bit hosts, set explicitly because interruption points
/// rely on the reservation: the reserved interrupt page lies in it, see `crate::interrupt`).
const MEMORY_RESERVATION: u64 = 1 << 32;
const _: () = assert!(interrupt::RESERVED_PAGE as u64 + interrupt::PAGE_BYTES <= MEMORY_RESERVATION);
const MEMORY_GUARD: u64 = 32 << 20;

/// The shortest interrupt tick.
const MIN_INTERRUPT_TICK: Duration = Duration::from_micros(50);

struct EngineInner {
    wasmtime: wasmtime::Engine,
    /// OS threads for guest threads, each with a stack for `max_wasm_stack` plus host code.
    pool: Arc<Pool>,
    interrupt_tick: Duration,
    epoch_interruption: bool,
    max_wasm_stack: usize,
    limits: LoadLimits,
}

/// What modules an engine loads: see [`EngineConfig::max_module_bytes`] and
/// [`EngineConfig::max_functions`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LoadLimits {
    pub(crate) max_module_bytes: Option<u64>,
    pub(crate) max_functions: Option<u64>,
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
    inner: Arc<EngineInner>,
}

impl Engine {
    pub fn new(config: &EngineConfig) -> Result<Engine> {
        if config.max_wasm_stack == 0 || config.max_wasm_stack > MAX_WASM_STACK_LIMIT {
            return Err(error(
                ErrorKind::Misuse,
                format!(
                    "max wasm stack must be between 1 byte and {} MiB (each guest thread reserves that much native stack), not {}",
                    MAX_WASM_STACK_LIMIT >> 20,
                    config.max_wasm_stack
                ),
            ));
        }
        let epoch =
            config.epoch_interruption || std::env::var_os("WASITHREADS_EPOCH_INTERRUPTION").is_some_and(|v| v == "1");
        let mut c = wasmtime::Config::new();
        c.wasm_threads(true)
            .shared_memory(true)
            // Busy guest threads are stopped by the interrupt page of their run (see
            // `module/rewrite.rs`), not by Wasmtime's epoch checks, which cost more.
            .epoch_interruption(epoch)
            // Every 32-bit memory is a fixed 4 GiB reservation followed by a guard region
            // (loads need no bounds checks; the interrupt page may lie in the reservation).
            .memory_reservation(MEMORY_RESERVATION)
            .memory_guard_size(MEMORY_GUARD)
            // Traps carry what a core dump needs (globals and private memories of the
            // store); only runs with a core dump path use it (`crate::coredump`).
            .coredump_on_trap(true)
            .max_wasm_stack(config.max_wasm_stack)
            // Wasmtime requires its async stack (unused here: no fibers) to be at least the
            // wasm stack; guest threads run on pool threads sized for the wasm stack.
            .async_stack_size(config.max_wasm_stack.max(2 << 20) + (1 << 20))
            .cranelift_opt_level(match config.opt_level {
                0 => OptLevel::None,
                1 => OptLevel::Speed,
                2 => OptLevel::SpeedAndSize,
                n => return Err(error(ErrorKind::Misuse, format!("opt level must be 0, 1 or 2, not {n}"))),
            });
        if config.cache {
            // Wasmtime reads its cache configuration and makes the cache directory here.
            let cache = wasmtime::Cache::from_file(None).kind(ErrorKind::Io)?;
            c.cache(Some(cache));
        }
        Ok(Engine {
            inner: Arc::new(EngineInner {
                // What Wasmtime refuses here is a combination of the host's settings.
                wasmtime: wasmtime::Engine::new(&c).kind(ErrorKind::Misuse)?,
                pool: Pool::new(config.max_wasm_stack + HOST_STACK_MARGIN),
                interrupt_tick: config.interrupt_tick.max(MIN_INTERRUPT_TICK),
                epoch_interruption: epoch,
                max_wasm_stack: config.max_wasm_stack,
                limits: LoadLimits { max_module_bytes: config.max_module_bytes, max_functions: config.max_functions },
            }),
        })
    }

    /// The underlying Wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.wasmtime
    }

    /// True when both handles are the same engine.
    pub fn same_as(&self, other: &Engine) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The OS threads guest threads run on.
    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.inner.pool
    }

    /// See [`EngineConfig::epoch_interruption`].
    pub(crate) fn epoch_interruption(&self) -> bool {
        self.inner.epoch_interruption
    }

    /// See [`EngineConfig::max_module_bytes`] and [`EngineConfig::max_functions`].
    pub(crate) fn load_limits(&self) -> LoadLimits {
        self.inner.limits
    }

    /// See [`EngineConfig::interrupt_tick`].
    /// The largest wasm stack of one guest thread, in bytes.
    pub(crate) fn max_wasm_stack(&self) -> usize {
        self.inner.max_wasm_stack
    }

    pub(crate) fn interrupt_tick(&self) -> Duration {
        self.inner.interrupt_tick
    }
}
