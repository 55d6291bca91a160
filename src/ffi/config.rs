//! `wt_run_config_t`.

use std::ffi::{CString, c_char, c_void};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::boundary::{NotError, str_arg};
use super::error::wt_error_t;
use super::run::{wt_thread_exit_kind_t, wt_thread_exit_t};
use crate::config::{Preopen, RunConfig};
use crate::exit::ThreadExit;

/// Settings for runs: arguments, environment, directories, limits, callbacks. A run
/// copies them when it starts, so one config may serve many runs and may be changed or
/// freed while they go on. Not thread-safe: change it from one thread at a time.
/// Release with `wt_run_config_free`.
pub struct wt_run_config {
    pub(crate) inner: RunConfig,
}
/// See `struct wt_run_config`.
pub type wt_run_config_t = wt_run_config;
impl NotError for wt_run_config {}

/// Called once for every thread of a run (the main thread, tid 0, included) after it
/// stopped running wasm, on that thread, before `wt_run` returns. `how` and the strings in
/// it are valid only during the call. Calls for different threads may run concurrently,
/// so `user_data` must be safe to use from any thread. The callback must not call `wt_run`
/// on the same run or free objects the run uses.
pub type wt_thread_exit_callback_t =
    Option<unsafe extern "C" fn(user_data: *mut c_void, tid: i32, how: *const wt_thread_exit_t)>;

/// A host pointer handed back to a callback on guest threads.
struct UserData(*mut c_void);
// SAFETY: the header requires `user_data` to be usable from any thread.
unsafe impl Send for UserData {}
// SAFETY: as above; the library only passes the pointer through.
unsafe impl Sync for UserData {}

impl UserData {
    /// A method, so that closures capture the whole (Send + Sync) wrapper.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

/// A new run configuration with the defaults: argv = {"wasm"}, no environment, no
/// directories, stdin/stdout/stderr inherited from the host process, at most 1024 spawned
/// threads alive at once, no timeout, no callback. Owned by the caller; release with
/// `wt_run_config_free`. Returns NULL only if memory ran out.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_new() -> *mut wt_run_config_t {
    ffi_boundary! { Box::into_raw(Box::new(wt_run_config { inner: RunConfig::default() })) }
}

/// Releases a run configuration. Runs already started are not affected. NULL is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_free(config: *mut wt_run_config_t) {
    ffi_boundary! {
        if !config.is_null() {
            // SAFETY: from `wt_run_config_new`, not yet freed (header contract).
            drop(unsafe { Box::from_raw(config) });
        }
    }
}

/// Appends one argument to the guest's argv (`argv[0]` first). `arg` must be UTF-8; it is
/// copied. Returns NULL on success, else an error (config unchanged).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_push_arg(config: *mut wt_run_config_t, arg: *const c_char) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        match str_arg(arg, "arg") {
            Ok(a) => { config.inner.args.push(a.to_owned()); std::ptr::null_mut() }
            Err(e) => wt_error_t::raw(e),
        }
    }
}

/// Adds the environment variable `key=value` for the guest. The guest sees no host
/// variables unless pushed. Both must be UTF-8 and `key` non-empty without '='; they are
/// copied. Returns NULL on success, else an error (config unchanged).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_push_env(
    config: *mut wt_run_config_t,
    key: *const c_char,
    value: *const c_char,
) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        let (k, v) = match (str_arg(key, "key"), str_arg(value, "value")) {
            (Ok(k), Ok(v)) => (k, v),
            (Err(e), _) | (_, Err(e)) => return wt_error_t::raw(e),
        };
        if k.is_empty() || k.contains('=') {
            return wt_error_t::raw(format!("environment key {k:?} must be non-empty and contain no '='"));
        }
        config.inner.env.push((k.to_owned(), v.to_owned()));
        std::ptr::null_mut()
    }
}

/// Gives the guest the host directory `host_path` (which must exist and be a directory
/// when the run starts) under the name `guest_path` (e.g. "/" or "/data"), read-write.
/// The guest cannot leave it by `..`, absolute paths or symlinks. Strings are copied.
/// Returns NULL on success, else an error (config unchanged).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_preopen_dir(
    config: *mut wt_run_config_t,
    host_path: *const c_char,
    guest_path: *const c_char,
) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        let (h, g) = match (str_arg(host_path, "host_path"), str_arg(guest_path, "guest_path")) {
            (Ok(h), Ok(g)) => (h, g),
            (Err(e), _) | (_, Err(e)) => return wt_error_t::raw(e),
        };
        config.inner.preopens.push(Preopen { host: PathBuf::from(h), guest: g.to_owned(), read_only: false });
        std::ptr::null_mut()
    }
}

/// Sets the most spawned threads alive at once (the main thread not counted; default
/// 1024). Past it `wasi::thread-spawn` returns a negative value and the guest goes on.
/// NULL `config` is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_max_threads(config: *mut wt_run_config_t, max_threads: u32) {
    ffi_boundary! {
        // SAFETY: NULL or a live config (header contract).
        if let Some(c) = unsafe { config.as_mut() } { c.inner.max_threads = max_threads; }
    }
}

/// Ends a run with `WT_EXIT_TIMEOUT` once it has gone on for `timeout_ms` milliseconds;
/// 0 (the default) means no timeout. NULL `config` is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_timeout_ms(config: *mut wt_run_config_t, timeout_ms: u64) {
    ffi_boundary! {
        // SAFETY: NULL or a live config (header contract).
        if let Some(c) = unsafe { config.as_mut() } {
            c.inner.timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
        }
    }
}

/// Sets (or, with `cb` NULL, clears) the thread-exit callback; see
/// `wt_thread_exit_callback_t`. NULL `config` is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_thread_exit_callback(
    config: *mut wt_run_config_t,
    cb: wt_thread_exit_callback_t,
    user_data: *mut c_void,
) {
    ffi_boundary! {
        // SAFETY: NULL or a live config (header contract).
        let Some(c) = (unsafe { config.as_mut() }) else { return };
        let Some(cb) = cb else { c.inner.on_thread_exit = None; return };
        let user_data = UserData(user_data);
        c.inner.on_thread_exit = Some(Arc::new(move |tid: i32, how: &ThreadExit| {
            let (kind, code, message) = match how {
                ThreadExit::Returned => (wt_thread_exit_kind_t::WT_THREAD_RETURNED, 0, None),
                ThreadExit::Exited(code) => (wt_thread_exit_kind_t::WT_THREAD_EXITED, *code, None),
                ThreadExit::Trapped(m) => (
                    wt_thread_exit_kind_t::WT_THREAD_TRAPPED,
                    0,
                    Some(CString::new(m.replace('\0', "")).unwrap_or_default()),
                ),
                ThreadExit::Terminated => (wt_thread_exit_kind_t::WT_THREAD_TERMINATED, 0, None),
            };
            let how = wt_thread_exit_t {
                kind,
                code,
                message: message.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
            };
            // SAFETY: the host registered `cb` for exactly this call shape; `how` outlives it.
            unsafe { cb(user_data.get(), tid, &how) }
        }));
    }
}
