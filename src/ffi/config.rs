//! `wt_run_config_t`.

use std::ffi::{CString, c_char, c_void};
use std::fs::File;
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::Duration;

use super::boundary::{NotError, byte_arg, free_box, path_arg, str_arg, with_live};
use super::error::wt_error_t;
use super::run::{wt_thread_exit_kind_t, wt_thread_exit_t};
use crate::config::{Preopen, RunConfig};
use crate::exit::ThreadExit;
use crate::stdio::{Input, Output};

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
/// so `user_data` must be safe to use from any thread. Like every run callback, it may call
/// `wt_run_cancel` on its own run, but must not wait for it (`wt_run`, `wt_run_wait`), free
/// it, or free objects the run uses.
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
        // SAFETY: NULL or from `wt_run_config_new`, not yet freed (header contract).
        unsafe { free_box(config) }
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
/// The guest cannot leave it by `..`, absolute paths or symlinks. `host_path` may be any
/// bytes (Linux paths need not be UTF-8); `guest_path` must be UTF-8. Strings are copied.
/// Returns NULL on success, else an error (config unchanged).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_preopen_dir(
    config: *mut wt_run_config_t,
    host_path: *const c_char,
    guest_path: *const c_char,
) -> *mut wt_error_t {
    ffi_boundary! { preopen(config, host_path, guest_path, false) }
}

fn preopen(config: *mut wt_run_config_t, host_path: *const c_char, guest_path: *const c_char, read_only: bool) -> *mut wt_error_t {
    let config = try_mut!(config);
    let (host, guest) = match (path_arg(host_path, "host_path"), str_arg(guest_path, "guest_path")) {
        (Ok(h), Ok(g)) => (h, g),
        (Err(e), _) | (_, Err(e)) => return wt_error_t::raw(e),
    };
    config.inner.preopens.push(Preopen { host, guest: guest.to_owned(), read_only });
    std::ptr::null_mut()
}

/// Sets the most spawned threads alive at once (the main thread not counted; default
/// 1024). A thread counts until its `wasi_thread_start` returns, so a guest that joined a
/// thread may spawn another. Past the limit `wasi::thread-spawn` returns a negative value
/// (after waiting up to 20 ms for a thread that is just finishing) and the guest goes on.
/// NULL `config` is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_max_threads(config: *mut wt_run_config_t, max_threads: u32) {
    ffi_boundary! {
        with_config(config, |c| c.max_threads = max_threads)
    }
}

/// Ends a run with `WT_EXIT_TIMEOUT` once it has gone on for `timeout_ms` milliseconds;
/// 0 (the default) means no timeout. NULL `config` is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_timeout_ms(config: *mut wt_run_config_t, timeout_ms: u64) {
    ffi_boundary! {
        with_config(config, |c| c.timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)))
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

/// Receives guest output: what thread `tid` wrote with one `fd_write`, `len` bytes at
/// `data` (valid only during the call). Called on the writing guest thread; calls for one
/// stream never overlap, and one `fd_write` is never split or mixed with another. It may
/// call `wt_run_cancel` on its own run (to stop a guest on some output), but must not wait
/// for or free that run.
pub type wt_output_callback_t =
    Option<unsafe extern "C" fn(user_data: *mut c_void, tid: i32, data: *const u8, len: usize)>;

/// Called on each new guest thread (main included, tid 0) just before it runs wasm, e.g.
/// to name or track it. `user_data` must be safe to use from any thread. It may call
/// `wt_run_cancel` on its own run, but must not wait for or free that run.
pub type wt_thread_start_callback_t = Option<unsafe extern "C" fn(user_data: *mut c_void, tid: i32)>;

/// Applies `f` to the config if it is not NULL.
fn with_config(config: *mut wt_run_config_t, f: impl FnOnce(&mut RunConfig)) {
    with_live(config, |c| f(&mut c.inner));
}

/// Passes the host process's environment to the guest when `inherit` is true (default
/// false: the guest sees only variables pushed with `wt_run_config_push_env`, which come
/// after the inherited ones). NULL `config` is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_inherit_env(config: *mut wt_run_config_t, inherit: bool) {
    ffi_boundary! { with_config(config, |c| c.inherit_env = inherit) }
}

/// Like `wt_run_config_preopen_dir`, but the guest may only read: opening for writing,
/// creating, renaming or removing anything under it fails with a WASI error.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_preopen_dir_readonly(
    config: *mut wt_run_config_t,
    host_path: *const c_char,
    guest_path: *const c_char,
) -> *mut wt_error_t {
    ffi_boundary! { preopen(config, host_path, guest_path, true) }
}

/// Caps the guest's linear memory at `bytes` (rounded down to 64 KiB pages); growing past
/// it fails (`memory.grow` returns -1) and the guest goes on. 0 (the default) = only the
/// module's own maximum. A cap below the module's minimum makes runs fail to start.
/// NULL `config` is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_max_memory(config: *mut wt_run_config_t, bytes: u64) {
    ffi_boundary! { with_config(config, |c| c.max_memory = (bytes > 0).then_some(bytes)) }
}

/// Sets (or, with `cb` NULL, clears) the thread-start callback. NULL `config` is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_thread_start_callback(
    config: *mut wt_run_config_t,
    cb: wt_thread_start_callback_t,
    user_data: *mut c_void,
) {
    ffi_boundary! {
        let user_data = UserData(user_data);
        with_config(config, |c| {
            c.on_thread_start = cb.map(|cb| -> crate::ThreadStartCallback {
                // SAFETY: the host registered `cb` for exactly this call shape.
                Arc::new(move |tid| unsafe { cb(user_data.get(), tid) })
            });
        })
    }
}

/// Which output stream a setter changes: 1 = stdout, 2 = stderr.
fn output_slot(c: &mut RunConfig, stream: i32) -> Result<&mut Output, *mut wt_error_t> {
    match stream {
        1 => Ok(&mut c.stdout),
        2 => Ok(&mut c.stderr),
        n => Err(wt_error_t::raw(format!("stream must be 1 (stdout) or 2 (stderr), not {n}"))),
    }
}

/// Sets output stream `stream` (1 = stdout, 2 = stderr), or returns an error.
fn set_output(config: *mut wt_run_config_t, stream: i32, make: impl FnOnce() -> Result<Output, String>) -> *mut wt_error_t {
    let config = try_mut!(config);
    let slot = match output_slot(&mut config.inner, stream) {
        Ok(slot) => slot,
        Err(e) => return e,
    };
    match make() {
        Ok(out) => {
            *slot = out;
            std::ptr::null_mut()
        }
        Err(e) => wt_error_t::raw(e),
    }
}

/// Guest output on `stream` (1 = stdout, 2 = stderr) goes to the host process's own
/// stdout / stderr (the default). Returns NULL, or an error for a bad argument.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_output_inherit(config: *mut wt_run_config_t, stream: i32) -> *mut wt_error_t {
    ffi_boundary! { set_output(config, stream, || Ok(Output::Inherit)) }
}

/// Guest output on `stream` (1 = stdout, 2 = stderr) is discarded; its writes succeed.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_output_null(config: *mut wt_run_config_t, stream: i32) -> *mut wt_error_t {
    ffi_boundary! { set_output(config, stream, || Ok(Output::Null)) }
}

/// Guest output on `stream` (1 = stdout, 2 = stderr) goes to the file at `path`, created
/// or truncated now. Runs using this config append to the same open file.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_output_file(
    config: *mut wt_run_config_t,
    stream: i32,
    path: *const c_char,
) -> *mut wt_error_t {
    ffi_boundary! {
        set_output(config, stream, || {
            let path = path_arg(path, "path")?;
            File::create(&path).map(|f| Output::File(Arc::new(f))).map_err(|e| format!("creating {}: {e}", path.display()))
        })
    }
}

/// Guest output on `stream` (1 = stdout, 2 = stderr) is written to the host descriptor
/// `fd`, which is duplicated now: the caller keeps ownership of `fd` and may close it.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_output_fd(config: *mut wt_run_config_t, stream: i32, fd: i32) -> *mut wt_error_t {
    ffi_boundary! { set_output(config, stream, || dup_fd(fd).map(|f| Output::File(Arc::new(f)))) }
}

/// Guest output on `stream` (1 = stdout, 2 = stderr) is handed to `cb` (see
/// `wt_output_callback_t`). A NULL `cb` is an error.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_output_callback(
    config: *mut wt_run_config_t,
    stream: i32,
    cb: wt_output_callback_t,
    user_data: *mut c_void,
) -> *mut wt_error_t {
    ffi_boundary! {
        let user_data = UserData(user_data);
        set_output(config, stream, || {
            let cb = cb.ok_or("`cb` is NULL")?;
            Ok(Output::Callback(Arc::new(move |tid, data: &[u8]| {
                // SAFETY: the host registered `cb` for this call shape; `data` outlives it.
                unsafe { cb(user_data.get(), tid, data.as_ptr(), data.len()) }
            })))
        })
    }
}

/// The guest's stdin is the host process's stdin (the default). NULL is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_stdin_inherit(config: *mut wt_run_config_t) {
    ffi_boundary! { with_config(config, |c| c.stdin = Input::Inherit) }
}

/// The guest's stdin is empty: reads return end-of-file. NULL is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_stdin_null(config: *mut wt_run_config_t) {
    ffi_boundary! { with_config(config, |c| c.stdin = Input::Null) }
}

/// The guest's stdin is the `len` bytes at `data` (copied now), then end-of-file. Each
/// run reads them from the start. `data` may be NULL when `len` is 0.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_stdin_bytes(
    config: *mut wt_run_config_t,
    data: *const u8,
    len: usize,
) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        let bytes = match byte_arg(data, len, "data") {
            Ok(b) => b,
            Err(e) => return e,
        };
        config.inner.stdin = Input::Bytes(bytes.into());
        std::ptr::null_mut()
    }
}

/// The guest's stdin is the file at `path`, opened by each run when it starts (a run
/// whose file cannot be opened fails to start).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_stdin_file(config: *mut wt_run_config_t, path: *const c_char) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        match path_arg(path, "path") {
            Ok(p) => { config.inner.stdin = Input::Path(p); std::ptr::null_mut() }
            Err(e) => wt_error_t::raw(e),
        }
    }
}

/// The guest's stdin is read from the host descriptor `fd` (a pipe, socket or file),
/// duplicated now: the caller keeps ownership of `fd`. A guest blocked reading it is
/// still stopped promptly when the run ends.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_stdin_fd(config: *mut wt_run_config_t, fd: i32) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        match dup_fd(fd) {
            Ok(f) => { config.inner.stdin = Input::File(Arc::new(f)); std::ptr::null_mut() }
            Err(e) => wt_error_t::raw(e),
        }
    }
}

/// A duplicate of the caller's descriptor, owned by the library.
fn dup_fd(fd: i32) -> Result<File, String> {
    if fd < 0 {
        return Err(format!("{fd} is not a file descriptor"));
    }
    // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` only reads the descriptor number; an invalid one
    // yields EBADF, and the new descriptor it returns is ours alone.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(format!("cannot duplicate descriptor {fd}: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `new` is a fresh descriptor owned by nobody else.
    Ok(unsafe { File::from_raw_fd(new) })
}
