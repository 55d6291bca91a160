//! `wt_engine_config_t` and `wt_engine_t`.

use super::args::with_live;
use super::boundary::NotError;
use super::error::wt_error_t;
use super::handle::Handle;
use crate::engine::{Engine, EngineConfig};

/// The opaque type behind `wt_engine_config_t`.
pub struct wt_engine_config {
    pub(crate) inner: EngineConfig,
}
/// Settings for `wt_engine_new`: Cranelift's optimisation level, the on-disk compilation
/// cache, the wasm stack of a guest thread, how busy guest code is stopped, what modules
/// it loads. Plain data:
/// change it from one thread at a time. `wt_engine_new` copies it, so one config may make
/// many engines and be changed or freed afterwards.
///
/// Methods:
/// - `wt_engine_config_new`: a config with the defaults
/// - `wt_engine_config_free`: releases it
/// - `wt_engine_config_set_opt_level`: Cranelift's optimisation level
/// - `wt_engine_config_set_cache`: Wasmtime's on-disk compilation cache
/// - `wt_engine_config_set_max_wasm_stack`: the wasm stack of one guest thread
/// - `wt_engine_config_set_interrupt_tick_us`: how often an ending run wakes its threads
/// - `wt_engine_config_set_epoch_interruption`: epoch checks instead of the interrupt page
/// - `wt_engine_config_set_max_module_bytes`: the largest module the engine loads
/// - `wt_engine_config_set_max_functions`: the most functions of a module it loads
///
/// Lifecycle: 1. `wt_engine_config_new`; 2. the setters; 3. `wt_engine_new`, any number of
/// times; 4. `wt_engine_config_free`.
pub type wt_engine_config_t = wt_engine_config;
impl NotError for wt_engine_config {}
impl Handle for wt_engine_config {}

/// A new engine configuration with the defaults: Cranelift opt level 1 (speed), no
/// on-disk compilation cache, a 1 MiB wasm stack per guest thread, a 1000 us interrupt
/// tick, the interrupt page. The caller owns the result and must release it with
/// `wt_engine_config_free`. Never NULL but after a panic inside the library.
#[unsafe(no_mangle)]
pub extern "C" fn wt_engine_config_new() -> *mut wt_engine_config_t {
    ffi_boundary! { wt_engine_config { inner: EngineConfig::default() }.into_raw() }
}

/// Releases a configuration. Engines made from it are not affected.
#[unsafe(no_mangle)]
pub extern "C" fn wt_engine_config_free(config: *mut wt_engine_config_t) {
    ffi_boundary! {
        // SAFETY: NULL or from `wt_engine_config_new`, not yet freed (header contract).
        unsafe { wt_engine_config::free(config) }
    }
}

/// Sets Cranelift's optimisation level: 0 = none, 1 = speed (the default), 2 = speed and
/// size. Other values make `wt_engine_new` fail.
#[unsafe(no_mangle)]
pub extern "C" fn wt_engine_config_set_opt_level(config: *mut wt_engine_config_t, level: u8) {
    ffi_boundary! {
        with_live(config, |c| c.inner.opt_level = level)
    }
}

/// Turns Wasmtime's on-disk compilation cache on or off (default off). Uses Wasmtime's
/// default cache configuration and directory.
#[unsafe(no_mangle)]
pub extern "C" fn wt_engine_config_set_cache(config: *mut wt_engine_config_t, enabled: bool) {
    ffi_boundary! {
        with_live(config, |c| c.inner.cache = enabled)
    }
}

/// Sets the largest wasm stack of one guest thread, in bytes: 1 byte to 256 MiB (default
/// 1 MiB). Every guest thread reserves this much native stack, plus 2 MiB for host code;
/// deeper recursion traps ("call stack exhausted"). 0 or more than 256 MiB makes
/// `wt_engine_new` fail with a message saying why.
#[unsafe(no_mangle)]
pub extern "C" fn wt_engine_config_set_max_wasm_stack(config: *mut wt_engine_config_t, bytes: usize) {
    ffi_boundary! {
        with_live(config, |c| c.inner.max_wasm_stack = bytes)
    }
}

/// Sets the interrupt tick: while a run is ending, how often guest threads that have not
/// stopped yet are woken again, in microseconds (default 1000). Values below 50, 0
/// included, are raised to 50. No timer runs while no run is ending: busy guests cost
/// nothing extra.
#[unsafe(no_mangle)]
pub extern "C" fn wt_engine_config_set_interrupt_tick_us(config: *mut wt_engine_config_t, us: u64) {
    ffi_boundary! {
        with_live(config, |c| c.inner.interrupt_tick = std::time::Duration::from_micros(us))
    }
}

/// Stops busy guest code with Wasmtime's epoch checks instead of wasithreads' interrupt
/// page when `enabled` (default false). The interrupt page costs a load at each loop head
/// and function entry, and stops a thread by a fault in its code, which Wasmtime's signal
/// handler turns into a trap; epoch checks cost a compare and branch at the same places
/// but need no signal, for running under tools that cannot deliver a fault in generated
/// code to that handler, such as valgrind. The environment variable
/// `WASITHREADS_EPOCH_INTERRUPTION=1` turns it on for every engine.
#[unsafe(no_mangle)]
pub extern "C" fn wt_engine_config_set_epoch_interruption(config: *mut wt_engine_config_t, enabled: bool) {
    ffi_boundary! {
        with_live(config, |c| c.inner.epoch_interruption = enabled)
    }
}

/// `WT_NO_LOAD_LIMIT` in the header (cbindgen.toml).
const NO_LOAD_LIMIT: u64 = u64::MAX;

/// Sets the largest module `wt_module_load` and `wt_module_load_file` accept, in bytes of
/// WebAssembly binary (WAT text is converted first), or `WT_NO_LOAD_LIMIT` (the default).
/// A bigger module is refused with a `WT_ERROR_LIMIT` error before it is validated or
/// compiled, which take time and memory in proportion to its size (README, "Limits"):
/// a host that loads untrusted modules sets it. `wt_module_deserialize` does not check it.
#[unsafe(no_mangle)]
pub extern "C" fn wt_engine_config_set_max_module_bytes(config: *mut wt_engine_config_t, bytes: u64) {
    ffi_boundary! {
        with_live(config, |c| c.inner.max_module_bytes = (bytes != NO_LOAD_LIMIT).then_some(bytes))
    }
}

/// Sets the most functions, imported and defined, of a module `wt_module_load` and
/// `wt_module_load_file` accept, or `WT_NO_LOAD_LIMIT` (the default). A module with more
/// is refused with a `WT_ERROR_LIMIT` error before it is validated or compiled.
#[unsafe(no_mangle)]
pub extern "C" fn wt_engine_config_set_max_functions(config: *mut wt_engine_config_t, functions: u64) {
    ffi_boundary! {
        with_live(config, |c| c.inner.max_functions = (functions != NO_LOAD_LIMIT).then_some(functions))
    }
}

/// The opaque type behind `wt_engine_t`.
pub struct wt_engine {
    pub(crate) inner: Engine,
}
/// A compilation and execution environment: Wasmtime's engine and the pool of OS threads
/// that guest threads run on. Thread-safe: any number of host threads may load modules and
/// run them on one engine at once. Owned by the caller.
///
/// The pool. A guest thread runs on an idle thread of the pool, or on a new one. A thread
/// whose guest thread ended waits 500 ms for another, then exits; `wt_engine_free` tells
/// idle ones to exit without waiting for them (one wakes the next, so freeing an engine
/// with thousands of idle threads takes well under a millisecond). When spawns keep
/// finding no idle thread (8 in a row, each within 10 ms of the last: a guest starting
/// many threads), a helper thread makes up to 8 threads ahead of them, so the spawning
/// guest thread does not make each OS thread itself; it stops once it had nothing to make
/// for 10 ms, and what it made and nobody used leaves after the 500 ms. On Linux 6.16 and
/// later, when the process reaches 64 pool threads, the library grows the process's
/// futex hash once (`prctl(PR_FUTEX_HASH)`; the kernel sizes it from the number of CPUs:
/// 16 buckets on 2 CPUs) to 16 384 buckets, 1 MiB of kernel memory, so that thousands of
/// blocked threads do not slow every futex call of the process. A process on the global
/// hash, or whose hash is larger than the kernel makes it by itself (4 buckets per online
/// CPU: the host set it), is left as it is, and so is every process when the environment
/// variable `WASITHREADS_KEEP_FUTEX_HASH=1` is set (for sandboxes that refuse unknown
/// `prctl` calls).
///
/// Methods:
/// - `wt_engine_new`: an engine from a config (or the defaults)
/// - `wt_engine_free`: releases the caller's handle
///
/// Lifecycle: 1. `wt_engine_new`; 2. load modules with it (`wt_module_load`, …) and run
/// them (`wt_run`, `wt_run_start`); 3. `wt_engine_free`, at any time: modules and runs
/// keep what they need alive.
pub type wt_engine_t = wt_engine;
impl Handle for wt_engine {}

/// Creates an engine from `config`, or from the defaults if `config` is NULL; the config is
/// copied, not consumed. On success writes the engine to `*engine_out` (the caller owns it
/// and must release it with `wt_engine_free`) and returns NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wt_engine_new(
    config: *const wt_engine_config_t,
    engine_out: *mut *mut wt_engine_t,
) -> *mut wt_error_t {
    ffi_boundary! {
        let out = try_mut!(engine_out);
        // SAFETY: NULL or a live config (header contract).
        let config = unsafe { config.as_ref() }.map(|c| c.inner.clone()).unwrap_or_default();
        wt_error_t::from_result(Engine::new(&config), |engine| {
            *out = wt_engine { inner: engine }.into_raw();
        })
    }
}

/// Releases the caller's engine handle. Modules and runs made from it keep what they need
/// alive, so objects may be freed in any order.
#[unsafe(no_mangle)]
pub extern "C" fn wt_engine_free(engine: *mut wt_engine_t) {
    ffi_boundary! {
        // SAFETY: NULL or from `wt_engine_new`, not yet freed (header contract).
        unsafe { wt_engine::free(engine) }
    }
}
