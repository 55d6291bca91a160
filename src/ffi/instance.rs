//! `wt_instance_t`: a module instantiated for calls (a plugin), its export calls from any
//! host thread, its guest memory, and its end.

use std::ffi::{c_char, CString};

use super::args::{byte_arg, str_arg, ArgError};
use super::engine::wt_engine_t;
use super::error::wt_error_t;
use super::func::{vals_arg, wt_val_t, wt_valkind_t};
use super::handle::Handle;
use super::module::wt_module_t;
use super::run::wt_exit_t;
use super::run_config::wt_run_config_t;
use crate::config::RunConfig;
use crate::error::ErrorKind;
use crate::instance::{CallMode, Instance, InstanceEnded};

/// How an instance's export calls run (`wt_instance_call_mode`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wt_call_mode {
    /// Each calling host thread runs on a guest thread of its own (its own stack, TLS,
    /// `pthread_self`), made from the module's own `pthread_create` on its first call and
    /// kept for its next calls; calls from different host threads run in parallel. A
    /// module gets this mode when it has a shared memory and wasi-libc's
    /// `__pthread_create` in its name section: any C, C++ or Rust module built for
    /// `wasm32-wasip1-threads` (wasi-sdk, Rust's target) that is not stripped of names.
    WT_CALLS_PARALLEL = 0,
    /// Calls run one at a time on the main thread's instance; other callers wait.
    WT_CALLS_SERIAL = 1,
}
/// See `enum wt_call_mode`.
pub type wt_call_mode_t = wt_call_mode;

impl super::boundary::Fallback for wt_call_mode_t {
    fn on_panic(_: String) -> Self {
        wt_call_mode::WT_CALLS_SERIAL
    }
}

/// The opaque type behind `wt_instance_t`.
pub struct wt_instance {
    inner: Instance,
    /// The names of `inner`'s callable exports for `wt_instance_export_name`, in the
    /// module's order (names holding a NUL, which C cannot pass, are left out).
    export_names: Vec<CString>,
}
/// A module instantiated once for export calls (a plugin): `_initialize` has run, its
/// guest threads go on between calls, and every setting of the run config it was made
/// with (limits, timeout, stdio, preopens, callbacks, host functions) applies for its
/// whole life. Thread-safe: any number of host threads may call it at once, except
/// `wt_instance_free`. Owned by the caller.
///
/// It ends at the first of: a trap or `proc_exit` in any of its threads (a call's, or a
/// thread the guest spawned), its timeout (counted from `wt_instance_new`),
/// `wt_instance_cancel`, `wt_instance_close`. Every thread is then stopped, calls in
/// flight return `WT_ERROR_ENDED`, and so does every later call, at once, each with the
/// instance's first exit. Stopping a thread mid-call can leave the guest's locks held,
/// which is why one thread's end ends the instance: the proposal's rule, as for runs.
///
/// Methods:
/// - `wt_instance_new`: instantiates a module and runs its `_initialize`
/// - `wt_instance_call`: calls an export, from any host thread
/// - `wt_instance_call_mode`: whether calls run in parallel
/// - `wt_instance_export_count`, `wt_instance_export_name`, `wt_instance_export_type`:
///   the exports it can call and their types
/// - `wt_instance_memory_data`, `wt_instance_memory_size`, `wt_instance_memory_read`,
///   `wt_instance_memory_write`: the guest memory
/// - `wt_instance_cancel`: ends it with `WT_EXIT_CANCELLED`
/// - `wt_instance_close`: ends it, joins its threads, gives its exit
/// - `wt_instance_free`: closes it and releases it
///
/// Lifecycle: 1. `wt_instance_new`; 2. the calls, the memory, `wt_instance_cancel`,
/// `wt_instance_close`, in any order, from any threads; 3. `wt_instance_free`, not
/// concurrently with the other calls.
pub type wt_instance_t = wt_instance;
impl Handle for wt_instance {}

/// Instantiates `module` (loaded by `engine`) with `config` (NULL = defaults) on the
/// calling thread, as the instance's main thread (tid 0), and runs its `_initialize`
/// export if it has one (a command's `_start` is not run; its exports can be called).
/// On success writes the instance to `*instance_out` (owned by the caller: release it
/// with `wt_instance_free`) and returns NULL. Errors: those of `wt_run_start` (NULL
/// arguments, another engine's module, link errors such as an import no host function
/// defines, ...), `WT_ERROR_LIMIT` when the calling thread's stack is too small (see
/// `wt_instance_call`), and `WT_ERROR_ENDED` when the module's start function or
/// `_initialize` trapped, exited or ran past the timeout (the message says how, with
/// the backtrace; every thread it started is stopped and joined).
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_new(
    engine: *const wt_engine_t,
    module: *const wt_module_t,
    config: *const wt_run_config_t,
    instance_out: *mut *mut wt_instance_t,
) -> *mut wt_error_t {
    ffi_boundary! {
        let out = try_mut!(instance_out);
        let engine = try_ref!(engine);
        let module = try_ref!(module);
        if !module.inner.belongs_to(&engine.inner) {
            return ArgError::misuse("the module was loaded by a different engine").into_raw();
        }
        let default = RunConfig::default();
        // SAFETY: NULL or a live config (header contract).
        let config = unsafe { config.as_ref() }.map_or(&default, |c| &c.inner);
        wt_error_t::from_result(Instance::new(&module.inner, config), |inner| {
            let export_names = inner.exports().iter().filter_map(|(n, _)| CString::new(*n).ok()).collect();
            *out = wt_instance { inner, export_names }.into_raw();
        })
    }
}

/// Calls the export `name` with `nargs` arguments, on a guest thread of the calling host
/// thread's (see `wt_call_mode_t`), and writes its `nresults` results to `results`.
/// From any host thread, concurrently; from a host function of this instance too.
///
/// Returns NULL when the export returned (results written). Otherwise an error, and:
/// - `WT_ERROR_MISUSE` (the instance is unchanged, `*exit_out` untouched): NULL
///   `instance` or `name`, no exported function `name` (or one whose types are not
///   i32/i64/f32/f64), `nargs` or an argument's kind not the export's parameters,
///   `nresults` not its result count, a NULL array with a non-zero count;
/// - `WT_ERROR_LIMIT` (the instance is unchanged): no new guest thread could be made
///   for this host thread and none is idle to wait for (the thread limit is 0, or the
///   guest's `pthread_create` failed), or the calling thread has less stack left than
///   the engine's max wasm stack (default 1 MiB) plus 256 KiB;
/// - `WT_ERROR_ENDED`: the instance ended, in this call (a trap or `proc_exit` here ends
///   it) or before: `*exit_out` (if `exit_out` is not NULL) gets the instance's first
///   exit, as `wt_run_wait` gives a run's (release its message with `wt_exit_clear`).
///   This is the one case where a function writes an out-parameter when it fails.
///
/// At the thread limit (`wt_run_config_set_max_threads`, which counts call threads with
/// the guest's own), a host thread without a guest thread of its own waits for an idle
/// one. A call that must be bounded can use the config's timeout or a `wt_instance_cancel`
/// from another thread, both of which end the instance.
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_call(
    instance: *const wt_instance_t,
    name: *const c_char,
    args: *const wt_val_t,
    nargs: usize,
    results: *mut wt_val_t,
    nresults: usize,
    exit_out: *mut wt_exit_t,
) -> *mut wt_error_t {
    ffi_boundary! {
        let instance = try_ref!(instance);
        let checked = (|| Ok((str_arg(name, "name")?, vals_arg(args, nargs, "args")?)))();
        let (name, args) = match checked {
            Ok(v) => v,
            Err(e) => return ArgError::into_raw(e),
        };
        if nresults > 0 && results.is_null() {
            return ArgError::null("results").into_raw();
        }
        let inst = &instance.inner;
        let mut vals: Vec<crate::Val> = match inst.export_type(name) {
            Some(ty) if ty.results.len() == nresults => ty.results.iter().map(|&k| crate::Val::zero(k)).collect(),
            _ => vec![crate::Val::I32(0); nresults],
        };
        let done = inst.call_into(name, &args, &mut vals);
        if let Err(e) = &done {
            if let (Some(ended), false) = (InstanceEnded::of(e), exit_out.is_null()) {
                // SAFETY: non-NULL, a `wt_exit_t` of the caller's (header contract).
                unsafe { *exit_out = wt_exit_t::from_exit(ended.0.clone()) };
            }
        }
        wt_error_t::from_result(done, |()| {
            for (i, v) in vals.into_iter().enumerate() {
                // SAFETY: `results` holds `nresults` values (header contract), and
                // `vals` has exactly `nresults` (checked by `call_into`).
                unsafe { *results.add(i) = v.into() };
            }
        })
    }
}

/// How many exports `wt_instance_call` can reach: functions whose parameters and results
/// are all numbers (i32, i64, f32, f64), whose name holds no NUL, other than the
/// library's own (0 for a NULL `instance`).
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_export_count(instance: *const wt_instance_t) -> usize {
    ffi_boundary! {
        // SAFETY: NULL or a live instance (header contract).
        unsafe { instance.as_ref() }.map_or(0, |i| i.export_names.len())
    }
}

/// The name of callable export `index` (0 to `wt_instance_export_count` - 1, in the
/// module's order), owned by the instance and valid until `wt_instance_free`; NULL for
/// an index out of range or a NULL `instance`.
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_export_name(instance: *const wt_instance_t, index: usize) -> *const c_char {
    ffi_boundary! {
        // SAFETY: NULL or a live instance (header contract).
        unsafe { instance.as_ref() }
            .and_then(|i| i.export_names.get(index))
            .map_or(std::ptr::null(), |n| n.as_ptr())
    }
}

/// The type of export `name`: writes its parameter count to `*nparams_out` and its
/// result count to `*nresults_out`, and the kinds of its first `params_len` parameters
/// and `results_len` results to `params` and `results` (which may be NULL when their
/// length is 0). As with `snprintf`, a count above the length given means the arrays
/// were too short: call again with longer ones. Errors: `WT_ERROR_MISUSE` for NULL
/// arguments or when the module has no export `name` that `wt_instance_call` can reach.
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_export_type(
    instance: *const wt_instance_t,
    name: *const c_char,
    params: *mut wt_valkind_t,
    params_len: usize,
    nparams_out: *mut usize,
    results: *mut wt_valkind_t,
    results_len: usize,
    nresults_out: *mut usize,
) -> *mut wt_error_t {
    ffi_boundary! {
        let instance = try_ref!(instance);
        let nparams_out = try_mut!(nparams_out);
        let nresults_out = try_mut!(nresults_out);
        let name = try_arg!(str_arg(name, "name"));
        if params_len > 0 && params.is_null() {
            return ArgError::null("params").into_raw();
        }
        if results_len > 0 && results.is_null() {
            return ArgError::null("results").into_raw();
        }
        let Some(ty) = instance.inner.export_type(name) else {
            return ArgError::misuse(format!("the module has no callable export `{name}`")).into_raw();
        };
        for (out, len, kinds) in [(params, params_len, &ty.params), (results, results_len, &ty.results)] {
            for (i, &k) in kinds.iter().take(len).enumerate() {
                // SAFETY: `out` holds `len` kinds (header contract) and `i < len`.
                unsafe { *out.add(i) = k.into() };
            }
        }
        *nparams_out = ty.params.len();
        *nresults_out = ty.results.len();
        std::ptr::null_mut()
    }
}

/// How calls of `instance` run: `WT_CALLS_PARALLEL` or `WT_CALLS_SERIAL` (also for a
/// NULL `instance`).
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_call_mode(instance: *const wt_instance_t) -> wt_call_mode_t {
    ffi_boundary! {
        // SAFETY: NULL or a live instance (header contract).
        match unsafe { instance.as_ref() }.map(|i| i.inner.call_mode()) {
            Some(CallMode::Parallel) => wt_call_mode::WT_CALLS_PARALLEL,
            _ => wt_call_mode::WT_CALLS_SERIAL,
        }
    }
}

/// The shared memory's base address, for reading and writing guest data in place
/// (NULL for a module without a shared memory, or a NULL `instance`: use
/// `wt_instance_memory_read`/`_write`). The base never moves while the instance is not
/// freed (a shared memory grows in place), also after the instance ended. Guest threads
/// read and write the memory concurrently with the host: ordering the host's accesses
/// with theirs (a call that returns, the guest's atomics) is the host's business.
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_memory_data(instance: *const wt_instance_t) -> *mut u8 {
    ffi_boundary! {
        // SAFETY: NULL or a live instance (header contract).
        unsafe { instance.as_ref() }.map_or(std::ptr::null_mut(), |i| i.inner.memory().0)
    }
}

/// The shared memory's current size in bytes: it grows when the guest grows it (0 for a
/// module without a shared memory, or a NULL `instance`).
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_memory_size(instance: *const wt_instance_t) -> usize {
    ffi_boundary! {
        // SAFETY: NULL or a live instance (header contract).
        unsafe { instance.as_ref() }.map_or(0, |i| i.inner.memory().1)
    }
}

/// Copies `len` bytes of guest memory at `offset` to `buf`. `WT_ERROR_MISUSE` when the
/// range is outside the memory's current size (nothing copied) or for NULL arguments.
/// Works for shared and unshared memories, also after the instance ended.
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_memory_read(
    instance: *const wt_instance_t,
    offset: u64,
    buf: *mut u8,
    len: usize,
) -> *mut wt_error_t {
    ffi_boundary! {
        let instance = try_ref!(instance);
        if len > 0 && buf.is_null() {
            return ArgError::null("buf").into_raw();
        }
        let mut empty = [];
        let out: &mut [u8] = if len == 0 {
            &mut empty
        } else {
            // SAFETY: non-NULL, and the caller promises `len` writable bytes (header contract).
            unsafe { std::slice::from_raw_parts_mut(buf, len) }
        };
        wt_error_t::from_result(instance.inner.read(offset, out), |()| {})
    }
}

/// Copies `len` bytes from `data` into guest memory at `offset`. `WT_ERROR_MISUSE` when
/// the range is outside the memory's current size (nothing copied) or for NULL arguments.
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_memory_write(
    instance: *const wt_instance_t,
    offset: u64,
    data: *const u8,
    len: usize,
) -> *mut wt_error_t {
    ffi_boundary! {
        let instance = try_ref!(instance);
        let data = match byte_arg(data, len, "data") {
            Ok(d) => d,
            Err(e) => return e.into_raw(),
        };
        wt_error_t::from_result(instance.inner.write(offset, data), |()| {})
    }
}

/// Ends the instance with `WT_EXIT_CANCELLED` unless it already ended: every thread stops
/// within milliseconds and calls in flight return `WT_ERROR_ENDED`. Returns at once. Safe
/// from any thread, from the instance's callbacks and host functions, any number of times.
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_cancel(instance: *const wt_instance_t) {
    ffi_boundary! {
        // SAFETY: NULL or a live instance (header contract).
        if let Some(i) = unsafe { instance.as_ref() } { i.inner.cancel(); }
    }
}

/// Ends the instance if it still lives (as `wt_instance_cancel`), waits until every
/// thread of it stopped and was joined (or outlived the teardown grace, as for runs), and
/// fills `*exit_out` with its first exit (`WT_EXIT_CANCELLED` if nothing ended it
/// before; release the message with `wt_exit_clear`). From then on no callback or host
/// function of the instance starts, and calls fail with `WT_ERROR_ENDED`. May be called
/// more than once; each call reports the same exit. Errors (`*exit_out` untouched): NULL
/// arguments, or a call from one of the instance's own callbacks or host functions (it
/// would wait for itself).
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_close(instance: *const wt_instance_t, exit_out: *mut wt_exit_t) -> *mut wt_error_t {
    ffi_boundary! {
        let instance = try_ref!(instance);
        let out = try_mut!(exit_out);
        if instance.inner.in_own_callback() {
            return wt_error_t::raw(
                ErrorKind::Misuse,
                0,
                "wt_instance_close called from one of the instance's own callbacks or host functions: it would wait for itself",
            );
        }
        *out = wt_exit_t::from_exit(instance.inner.close());
        std::ptr::null_mut()
    }
}

/// Closes the instance (see `wt_instance_close`) and releases it, its memory and its
/// guest threads. Called from one of its own callbacks or host functions, it cancels
/// the instance and the release completes on a library thread once that callback
/// returned. NULL is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_instance_free(instance: *mut wt_instance_t) {
    ffi_boundary! {
        // SAFETY: NULL or from `wt_instance_new`, not yet freed, not in use by another call.
        unsafe { wt_instance::free(instance) }
    }
}
