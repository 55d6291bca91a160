//! Host functions from C: `wt_val_t` (a typed value), `wt_caller_t` (the calling guest
//! thread, during a callback), `wt_run_config_define_func`, and `wt_error_new` (what a
//! callback returns to trap its caller).

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::args::{str_arg, ArgError};
use super::callbacks::UserData;
use super::error::wt_error_t;
use super::run_config::wt_run_config_t;
use crate::error::ErrorKind;
use crate::hostfunc::{Caller, HostFunc, Val, ValKind};

/// The type of a WebAssembly value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wt_valkind {
    WT_I32 = 0,
    WT_I64 = 1,
    WT_F32 = 2,
    WT_F64 = 3,
}
/// See `enum wt_valkind`.
pub type wt_valkind_t = wt_valkind;

impl From<wt_valkind_t> for ValKind {
    fn from(k: wt_valkind_t) -> ValKind {
        match k {
            wt_valkind::WT_I32 => ValKind::I32,
            wt_valkind::WT_I64 => ValKind::I64,
            wt_valkind::WT_F32 => ValKind::F32,
            wt_valkind::WT_F64 => ValKind::F64,
        }
    }
}

impl From<ValKind> for wt_valkind_t {
    fn from(k: ValKind) -> wt_valkind_t {
        match k {
            ValKind::I32 => wt_valkind::WT_I32,
            ValKind::I64 => wt_valkind::WT_I64,
            ValKind::F32 => wt_valkind::WT_F32,
            ValKind::F64 => wt_valkind::WT_F64,
        }
    }
}

/// The value of a `wt_val_t`, read as its `kind` says.
#[repr(C)]
#[derive(Clone, Copy)]
pub union wt_valunion {
    pub i32: i32,
    pub i64: i64,
    pub f32: f32,
    pub f64: f64,
}
/// See `union wt_valunion`.
pub type wt_valunion_t = wt_valunion;

/// A WebAssembly value: its kind and the member of `of` that kind names.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct wt_val {
    pub kind: wt_valkind_t,
    pub of: wt_valunion_t,
}
/// See `struct wt_val`.
pub type wt_val_t = wt_val;

impl From<Val> for wt_val_t {
    fn from(v: Val) -> wt_val_t {
        match v {
            Val::I32(i32) => wt_val { kind: wt_valkind::WT_I32, of: wt_valunion { i32 } },
            Val::I64(i64) => wt_val { kind: wt_valkind::WT_I64, of: wt_valunion { i64 } },
            Val::F32(f32) => wt_val { kind: wt_valkind::WT_F32, of: wt_valunion { f32 } },
            Val::F64(f64) => wt_val { kind: wt_valkind::WT_F64, of: wt_valunion { f64 } },
        }
    }
}

impl wt_val_t {
    /// The value, or `None` when `kind` is not one of the enum's values.
    pub(super) fn to_val(self) -> Option<Val> {
        // The kind is read as a plain integer first: a C caller may have stored anything.
        let kind = self.kind as u32;
        // SAFETY: each arm reads the member the kind names; every bit pattern of these
        // number types is a valid value.
        unsafe {
            Some(match kind {
                0 => Val::I32(self.of.i32),
                1 => Val::I64(self.of.i64),
                2 => Val::F32(self.of.f32),
                3 => Val::F64(self.of.f64),
                _ => return None,
            })
        }
    }
}

/// `n` values at `ptr` as [`Val`]s; NULL is allowed only for `n` 0.
pub(super) fn vals_arg(ptr: *const wt_val_t, n: usize, what: &str) -> Result<Vec<Val>, ArgError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(ArgError::null(what));
    }
    // SAFETY: non-NULL, and the caller promises `n` readable values (header contract).
    let vals = unsafe { std::slice::from_raw_parts(ptr, n) };
    vals.iter()
        .enumerate()
        .map(|(i, v)| v.to_val().ok_or_else(|| ArgError::misuse(format!("`{what}[{i}]` has an unknown kind"))))
        .collect()
}

/// The opaque type behind `wt_caller_t`: the [`Caller`] of the running callback.
pub struct wt_caller {
    inner: *const c_void,
}

impl wt_caller {
    /// The caller behind `ptr`, if not NULL.
    fn get<'a>(ptr: *const wt_caller_t) -> Option<&'a Caller<'a>> {
        // SAFETY: NULL or the live caller of the running callback (header contract),
        // whose `inner` points to the `Caller` on the stack of `define_func`'s closure.
        unsafe { ptr.as_ref().map(|c| &*c.inner.cast::<Caller<'a>>()) }
    }
}
/// The guest thread that called a host function: valid only during that callback, on
/// that thread.
///
/// Methods:
/// - `wt_caller_tid`: the calling thread's id
/// - `wt_caller_memory_data`, `wt_caller_memory_size`: the guest memory
/// - `wt_caller_is_ending`, `wt_caller_end_fd`: whether its run or instance is ending
pub type wt_caller_t = wt_caller;

/// Called when a guest calls the host function it was defined for, on the calling
/// guest thread (concurrently for calls from different threads). `args` holds `nargs`
/// values of the declared parameter types; `results` holds `nresults` values whose kinds
/// are set to the declared result types and whose values are 0: write each one's value
/// (keep its kind). Return NULL, or an error (from `wt_error_new`; the library takes
/// and frees it) to trap the calling thread, which ends its run or instance with the
/// message "host function `module::name` failed: <message>" and the caller's wasm
/// backtrace. `caller`, `args` and `results` are valid only during the call.
///
/// A callback that blocks (a queue, the network) must stay stoppable: poll
/// `wt_caller_end_fd` beside its own descriptors, or check `wt_caller_is_ending` often,
/// and return (any error) once the run is ending. The end of a run waits for a host call
/// only up to the teardown grace. The callback must return normally (no `longjmp`, no C++
/// exception across it); it may call `wt_run_cancel`/`wt_instance_cancel` and, on an
/// instance, `wt_instance_call` (a call from a host function runs on another guest thread
/// of the instance).
pub type wt_func_callback_t = Option<
    unsafe extern "C" fn(
        env: *mut c_void,
        caller: *mut wt_caller_t,
        args: *const wt_val_t,
        nargs: usize,
        results: *mut wt_val_t,
        nresults: usize,
    ) -> *mut wt_error_t,
>;

/// Called once with `env` when the last run, instance and config that hold a host
/// function are released, on whichever thread releases it.
pub type wt_finalizer_t = Option<unsafe extern "C" fn(env: *mut c_void)>;

/// A host function's `env` and finalizer: the finalizer runs when the last holder of the
/// function lets go of it.
struct Env {
    env: UserData,
    finalizer: wt_finalizer_t,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(f) = self.finalizer {
            // SAFETY: the host registered `f` for `env`; this is the one call.
            unsafe { f(self.env.get()) }
        }
    }
}

/// `n` kinds at `ptr`; NULL is allowed only for `n` 0.
fn kinds_arg(ptr: *const wt_valkind_t, n: usize, what: &str) -> Result<Vec<ValKind>, ArgError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(ArgError::null(what));
    }
    // SAFETY: non-NULL; the caller promises `n` readable kinds, read as integers first
    // since C may store any value in an enum.
    let raw = unsafe { std::slice::from_raw_parts(ptr.cast::<u32>(), n) };
    raw.iter()
        .enumerate()
        .map(|(i, &k)| match k {
            0 => Ok(ValKind::I32),
            1 => Ok(ValKind::I64),
            2 => Ok(ValKind::F32),
            3 => Ok(ValKind::F64),
            _ => Err(ArgError::misuse(format!("`{what}[{i}]` is not a wt_valkind_t ({k})"))),
        })
        .collect()
}

/// Defines the host function `module::name` with `nparams` parameter and `nresults`
/// result types for every run and instance made with `config`: it is linked into every
/// instance of them (the main thread's, each spawned thread's, each call worker's), so
/// guests can call it from any thread. A module's imports other than WASI and
/// `wasi::thread-spawn` must each be defined here, with the type the module imports:
/// `wt_run`, `wt_run_start` and `wt_instance_new` fail (`WT_ERROR_LINK`) naming an import
/// that is missing or has another type. Functions the module does not import are
/// ignored.
///
/// `callback` gets `env` on every call (see `wt_func_callback_t`); `finalizer` (NULL =
/// none) is called with `env` once the config and every run and instance made with it
/// were released, or at once when the definition fails. Errors (and nothing
/// defined, `finalizer` called): NULL `config`, `module`, `name` or `callback`, a
/// type array NULL with a non-zero count, an unknown kind, a name already defined on
/// this config, or one of the library's own imports (`wasi_snapshot_preview1`,
/// `wasi::thread-spawn`).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_define_func(
    config: *mut wt_run_config_t,
    module: *const c_char,
    name: *const c_char,
    params: *const wt_valkind_t,
    nparams: usize,
    results: *const wt_valkind_t,
    nresults: usize,
    callback: wt_func_callback_t,
    env: *mut c_void,
    finalizer: wt_finalizer_t,
) -> *mut wt_error_t {
    ffi_boundary! {
        // Made first, so that every early return releases `env` as documented.
        let env = Arc::new(Env { env: UserData::new(env), finalizer });
        let config = try_mut!(config);
        let Some(callback) = callback else { return ArgError::null("callback").into_raw() };
        let parsed = (|| -> Result<_, ArgError> {
            Ok((
                str_arg(module, "module")?,
                str_arg(name, "name")?,
                kinds_arg(params, nparams, "params")?,
                kinds_arg(results, nresults, "results")?,
            ))
        })();
        let (module, name, params, results) = match parsed {
            Ok(p) => p,
            Err(e) => return e.into_raw(),
        };
        let imports = &mut config.inner.imports;
        if imports.iter().any(|f| f.module == module && f.name == name) {
            return ArgError::misuse(format!("host function `{module}::{name}` is already defined on this config")).into_raw();
        }
        let f = HostFunc::new(module, name, &params, &results, move |caller, args, outs| {
            let args: Vec<wt_val_t> = args.iter().map(|&v| v.into()).collect();
            let mut res: Vec<wt_val_t> = outs.iter().map(|&v| v.into()).collect();
            let mut c = wt_caller { inner: (caller as *const Caller<'_>).cast() };
            // SAFETY: the host registered `callback` for this call shape; every pointer
            // is valid for the call.
            let err = unsafe { callback(env.env.get(), &mut c, args.as_ptr(), args.len(), res.as_mut_ptr(), res.len()) };
            if !err.is_null() {
                // SAFETY: the callback returned an error it owned, made by this library.
                let err = unsafe { Box::from_raw(err) };
                anyhow::bail!("{}", err.text());
            }
            for (i, (out, v)) in outs.iter_mut().zip(&res).enumerate() {
                *out = v.to_val().ok_or_else(|| anyhow::anyhow!("result {i} has an unknown kind"))?;
            }
            Ok(())
        });
        imports.push(f);
        std::ptr::null_mut()
    }
}

/// The calling thread's id: 0 for the main thread, > 0 for spawned threads and for the
/// guest threads of instance calls. -1 if `caller` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wt_caller_tid(caller: *const wt_caller_t) -> i32 {
    ffi_boundary! {
        wt_caller::get(caller).map_or(-1, Caller::tid)
    }
}

/// The guest memory's base address (NULL without a memory, or if `caller` is NULL). For a
/// shared memory (every threaded module's) the base never moves while its run or instance
/// lives and other guest threads use it concurrently; a module's unshared memory is valid
/// only during the callback.
#[unsafe(no_mangle)]
pub extern "C" fn wt_caller_memory_data(caller: *const wt_caller_t) -> *mut u8 {
    ffi_boundary! {
        wt_caller::get(caller).map_or(std::ptr::null_mut(), |c| c.memory().0)
    }
}

/// The guest memory's current size in bytes (0 without a memory, or if `caller` is NULL).
#[unsafe(no_mangle)]
pub extern "C" fn wt_caller_memory_size(caller: *const wt_caller_t) -> usize {
    ffi_boundary! {
        wt_caller::get(caller).map_or(0, |c| c.memory().1)
    }
}

/// True once the caller's run or instance is ending: return soon (any error will do).
#[unsafe(no_mangle)]
pub extern "C" fn wt_caller_is_ending(caller: *const wt_caller_t) -> bool {
    ffi_boundary! {
        wt_caller::get(caller).is_some_and(Caller::is_ending)
    }
}

/// A descriptor that becomes readable (`POLLIN`) when the caller's run or instance ends,
/// for a callback that blocks in `poll`/`epoll` on descriptors of its own. Owned by the
/// library, valid until the run or instance is released: do not read, write or close it.
/// -1 if `caller` is NULL or the OS refused an eventfd.
#[unsafe(no_mangle)]
pub extern "C" fn wt_caller_end_fd(caller: *const wt_caller_t) -> i32 {
    ffi_boundary! {
        use std::os::fd::AsRawFd;
        wt_caller::get(caller).and_then(Caller::end_fd).map_or(-1, |fd| fd.as_raw_fd())
    }
}

/// A new error with `message` (UTF-8; NULL gives "(no message)"), kind `WT_ERROR_OTHER`,
/// for a host function to return. The caller owns it (a host function that returns it
/// hands it to the library).
#[unsafe(no_mangle)]
pub extern "C" fn wt_error_new(message: *const c_char) -> *mut wt_error_t {
    ffi_boundary! {
        let text = if message.is_null() {
            "(no message)".to_string()
        } else {
            // SAFETY: non-NULL and NUL-terminated (header contract).
            unsafe { std::ffi::CStr::from_ptr(message) }.to_string_lossy().into_owned()
        };
        wt_error_t::raw(ErrorKind::Other, 0, text)
    }
}
