//! The run callbacks the host can register: thread start, thread exit (with
//! `wt_thread_exit_t`, how one thread ended) and diagnostics; and [`UserData`], the host
//! pointer every callback gets.

use std::ffi::c_void;
use std::sync::Arc;

use super::args::c_string;
use super::run_config::{with_config, wt_run_config_t};
use crate::{DiagnosticCallback, ThreadExit, ThreadStartCallback};

/// How one thread ended, as passed to the thread-exit callback.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wt_thread_exit_kind {
    /// `_start` or `wasi_thread_start` returned.
    WT_THREAD_RETURNED = 0,
    /// The thread called `proc_exit(code)`, which ended the run.
    WT_THREAD_EXITED = 1,
    /// The thread trapped, which ended the run.
    WT_THREAD_TRAPPED = 2,
    /// The thread was stopped because another thread, a timeout or the host ended the run.
    WT_THREAD_TERMINATED = 3,
}
/// See `enum wt_thread_exit_kind`.
pub type wt_thread_exit_kind_t = wt_thread_exit_kind;

/// How one thread ended.
#[repr(C)]
#[derive(Debug)]
pub struct wt_thread_exit {
    pub kind: wt_thread_exit_kind_t,
    /// The `proc_exit` code for `WT_THREAD_EXITED`; 0 otherwise.
    pub code: i32,
    /// For `WT_THREAD_TRAPPED`: the trap message and wasm backtrace; NULL otherwise.
    /// Borrowed: valid only during the callback.
    pub message: *const std::ffi::c_char,
    /// For `WT_THREAD_TERMINATED`: where the thread was when the run's end stopped it
    /// (timeout, cancel, a trap or `proc_exit` elsewhere), as UTF-8 "wasm backtrace:" then
    /// one frame a line, innermost first, `  N: name (module offset 0x..)`, in the
    /// function indices and offsets of the module the host loaded (what `wasm-objdump -d`
    /// shows of it). A thread stopped inside a host call (a wait, `poll_oneoff`, a read)
    /// shows the call's caller. NULL when no wasm was on its stack, and for other kinds.
    /// Borrowed: valid only during the callback.
    pub backtrace: *const std::ffi::c_char,
}
/// See `struct wt_thread_exit`.
pub type wt_thread_exit_t = wt_thread_exit;

/// Called once for every thread of a run (the main thread, tid 0, included) after it
/// stopped running wasm, on that thread, before `wt_run` returns. `how` and the strings in
/// it are valid only during the call. Calls for different threads may run concurrently,
/// so `user_data` must be safe to use from any thread. It may call `wt_run_cancel` on its
/// own run; waiting for or freeing that run there is refused or deferred (see "Threads"
/// at the top).
pub type wt_thread_exit_callback_t =
    Option<unsafe extern "C" fn(user_data: *mut c_void, tid: i32, how: *const wt_thread_exit_t)>;

/// Called on each new guest thread, on that thread, e.g. to name or track it: for the
/// main thread (tid 0) before its instance is made (so before the module's start
/// function), for a spawned thread after its instance is made and before
/// `wasi_thread_start` — a spawn that fails never calls it. Every tid it is called for
/// gets exactly one thread-exit callback. For an instance (`wt_instance_new`) it is
/// called for the threads the guest spawns only: the main thread and the guest threads
/// of host threads that call exports run on the host's own threads, whose start and end
/// the host knows. `user_data` must be safe to use from any thread.
/// It may call `wt_run_cancel` on its own run; waiting for or freeing that run there is
/// refused or deferred (see "Threads" at the top).
pub type wt_thread_start_callback_t = Option<unsafe extern "C" fn(user_data: *mut c_void, tid: i32)>;

/// Tells the host about something the guest ran into that the guest itself only sees as
/// an error code, or that the host should know: a `thread-spawn` that failed and why (the
/// thread limit, a trap in the new instance's start function, the OS refusing a thread),
/// or threads that had not stopped when the teardown grace ran out. `tid` is the thread
/// concerned (for a spawn, the spawning thread); `message` is UTF-8, valid only during the
/// call. Called on a guest thread or the run's supervisor; at most 64 times per run (the
/// 64th says that later ones are dropped). `user_data` must be safe to use from any
/// thread. It may call `wt_run_cancel` on its own run; waiting for or freeing that run
/// there is refused or deferred (see "Threads" at the top).
pub type wt_diagnostic_callback_t =
    Option<unsafe extern "C" fn(user_data: *mut c_void, tid: i32, message: *const std::ffi::c_char)>;

/// A host pointer handed back to a callback on guest threads.
pub(super) struct UserData(*mut c_void);
// SAFETY: the header requires `user_data` to be usable from any thread.
unsafe impl Send for UserData {}
// SAFETY: as above; the library only passes the pointer through.
unsafe impl Sync for UserData {}

impl UserData {
    pub(super) fn new(ptr: *mut c_void) -> UserData {
        UserData(ptr)
    }

    /// A method, so that closures capture the whole (Send + Sync) wrapper.
    pub(super) fn get(&self) -> *mut c_void {
        self.0
    }
}

/// Sets (or, with `cb` NULL, clears) the thread-start callback; see
/// `wt_thread_start_callback_t`. `user_data` is passed to every call.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_thread_start_callback(
    config: *mut wt_run_config_t,
    cb: wt_thread_start_callback_t,
    user_data: *mut c_void,
) {
    ffi_boundary! {
        let user_data = UserData::new(user_data);
        with_config(config, |c| {
            c.hooks.on_thread_start = cb.map(|cb| -> ThreadStartCallback {
                // SAFETY: the host registered `cb` for exactly this call shape.
                Arc::new(move |tid| unsafe { cb(user_data.get(), tid) })
            });
        })
    }
}

/// Sets (or, with `cb` NULL, clears) the thread-exit callback; see
/// `wt_thread_exit_callback_t`. `user_data` is passed to every call.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_thread_exit_callback(
    config: *mut wt_run_config_t,
    cb: wt_thread_exit_callback_t,
    user_data: *mut c_void,
) {
    ffi_boundary! {
        let user_data = UserData::new(user_data);
        with_config(config, |c| {
            c.hooks.on_thread_exit = cb.map(|cb| -> crate::ThreadExitCallback {
                Arc::new(move |tid: i32, how: &ThreadExit| {
                    use wt_thread_exit_kind::*;
                    let (kind, code, message, backtrace) = match how {
                        ThreadExit::Returned => (WT_THREAD_RETURNED, 0, None, None),
                        ThreadExit::Exited(code) => (WT_THREAD_EXITED, *code, None, None),
                        ThreadExit::Trapped(m) => (WT_THREAD_TRAPPED, 0, Some(c_string(m.as_str())), None),
                        ThreadExit::Terminated { backtrace } => {
                            (WT_THREAD_TERMINATED, 0, None, backtrace.as_deref().map(c_string))
                        }
                    };
                    let ptr = |s: &Option<std::ffi::CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
                    let how = wt_thread_exit_t { kind, code, message: ptr(&message), backtrace: ptr(&backtrace) };
                    // SAFETY: the host registered `cb` for exactly this call shape; `how` outlives it.
                    unsafe { cb(user_data.get(), tid, &how) }
                })
            });
        })
    }
}

/// Sets (or, with `cb` NULL, clears) the diagnostic callback; see
/// `wt_diagnostic_callback_t`. `user_data` is passed to every call.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_diagnostic_callback(
    config: *mut wt_run_config_t,
    cb: wt_diagnostic_callback_t,
    user_data: *mut c_void,
) {
    ffi_boundary! {
        let user_data = UserData::new(user_data);
        with_config(config, |c| {
            c.hooks.on_diagnostic = cb.map(|cb| -> DiagnosticCallback {
                Arc::new(move |tid, message: &str| {
                    let message = c_string(message);
                    // SAFETY: the host registered `cb` for this call shape; `message` outlives it.
                    unsafe { cb(user_data.get(), tid, message.as_ptr()) }
                })
            });
        })
    }
}
