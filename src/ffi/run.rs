//! `wt_run`, `wt_run_t` and how a run ended: `wt_exit_t`.

use std::ffi::{c_char, CString};

use super::args::{c_string, ArgError};
use super::engine::wt_engine_t;
use super::error::wt_error_t;
use super::handle::Handle;
use super::module::wt_module_t;
use super::run_config::wt_run_config_t;
use crate::config::RunConfig;
use crate::exit::{ExitKind, RunExit};
use crate::run::Run;

/// Why a run ended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wt_exit_kind {
    /// `_start` returned (code 0) or a thread called `proc_exit(code)`.
    WT_EXIT_CODE = 0,
    /// A thread trapped; `tid` says which and `message` why.
    WT_EXIT_TRAP = 1,
    /// The run's timeout passed.
    WT_EXIT_TIMEOUT = 2,
    /// The host cancelled the run.
    WT_EXIT_CANCELLED = 3,
}
/// See `enum wt_exit_kind`.
pub type wt_exit_kind_t = wt_exit_kind;

/// The struct behind `wt_exit_t`.
#[repr(C)]
#[derive(Debug)]
pub struct wt_exit {
    pub kind: wt_exit_kind_t,
    /// For `WT_EXIT_CODE`: 0 when `_start` returned, else the `proc_exit` argument.
    /// 0 for the other kinds.
    pub code: i32,
    /// The thread that ended the run: 0 = main thread, >0 = a spawned thread; -1 for
    /// `WT_EXIT_TIMEOUT` and `WT_EXIT_CANCELLED`.
    pub tid: i32,
    /// For `WT_EXIT_TRAP`: UTF-8 "wasm trap: <reason>", then "wasm backtrace:" and one
    /// frame a line, innermost first, `    0: name (module offset 0x84)` (or
    /// `<wasm function N>` without a name section), in the function indices and offsets of
    /// the module the host loaded, not of the module wasithreads runs (it rewrites every
    /// module). NULL for the other kinds. Owned by the caller: release it with
    /// `wt_exit_clear`.
    pub message: *mut c_char,
}
/// How a run that started ended, filled by `wt_run`, `wt_run_wait` or `wt_run_try_wait`
/// into memory the caller provides. Its `message` belongs to the caller.
///
/// Methods:
/// - `wt_exit_clear`: releases `message`
///
/// Lifecycle: 1. `wt_run`, `wt_run_wait` or `wt_run_try_wait` fills it; 2. read it;
/// 3. `wt_exit_clear`.
pub type wt_exit_t = wt_exit;

impl wt_exit_t {
    pub(super) fn from_exit(e: RunExit) -> wt_exit_t {
        wt_exit_t {
            kind: match e.kind {
                ExitKind::Code => wt_exit_kind_t::WT_EXIT_CODE,
                ExitKind::Trap => wt_exit_kind_t::WT_EXIT_TRAP,
                ExitKind::Timeout => wt_exit_kind_t::WT_EXIT_TIMEOUT,
                ExitKind::Cancelled => wt_exit_kind_t::WT_EXIT_CANCELLED,
            },
            code: e.code,
            tid: e.tid,
            message: e.message.map_or(std::ptr::null_mut(), |m| c_string(m).into_raw()),
        }
    }
}

/// Runs `module`'s `_start` with `config` (NULL = defaults) and waits until every thread
/// of the run has exited and been joined and each thread's exit callback has returned.
///
/// A run ends at the first of: `_start` returns; any thread calls `proc_exit`; any thread
/// traps; the timeout passes; `wt_run_cancel`. All other threads are then stopped wherever
/// they are, and `wt_run` returns once they have stopped: within milliseconds, except for
/// a thread in the last row of this table, whose stop the teardown grace bounds:
///
/// | where a thread is                                   | how it is stopped                  |
/// |-----------------------------------------------------|------------------------------------|
/// | running wasm (any loop, call chain, tail calls)     | interrupt page: faults at the next loop head or at the entry of a function that could run long |
/// | `memory.atomic.wait32/64`, any timeout              | its wait slot's key (the word's address) is unparked |
/// | `poll_oneoff`: clocks (relative, absolute, any number), pipes, stdin | its wait slot is unparked / eventfd |
/// | `fd_sync`/`fd_datasync` (files)                     | the sync runs on a pool thread holding its own reference to the descriptor; the caller's wait slot is unparked (the sync finishes on its own) |
/// | `fd_read`/`fd_write`/`sock_recv`/`sock_send` on pipes, FIFOs, ttys, sockets, stdio | non-blocking I/O (a pipe, FIFO or terminal of the host's is reopened as the run's own non-blocking description, a socket written with `MSG_DONTWAIT`; the host's descriptor flags never change), waits poll the teardown eventfd; measured, cancel to `wt_run_wait` returning, median of 21: stdout a full pipe 0.26 ms, a full terminal 0.27 ms, a full socket 0.28 ms |
/// | queued for a lock other threads of the run take: a file's position (cursor `fd_read`/`fd_write`/`fd_seek`), an output stream, an output callback, stdin | its wait slot is unparked; a thread that gets the lock after the end starts no I/O under it. Measured: writers of a run queued behind another run's writer on a full stdout pipe 0.5-1.3 ms; 256 threads of 16 MiB cursor I/O on one file 17-31 ms (the holder's call in progress finishes, nothing is written after the return); writers queued for a 300 ms output callback: when the call in progress returns |
/// | `path_open` of a FIFO for writing with no reader    | retried through the teardown sleep |
/// | `thread-spawn` waiting for the new instance         | the new thread's instantiation is stopped like any wasm |
/// | `random_get` of gigabytes                           | checked between 64 KiB chunks      |
/// | `fd_readdir` of a huge directory, any cookie        | checked at every entry: 30 000 entries, median stop 0.6 ms |
/// | `poll_oneoff` with up to 2^20 subscriptions         | checked every 1024 subscriptions: 2^20 on a file, median stop 0.4 ms |
/// | inside a host callback, one long wasm instruction (`memory.fill` of GiBs), one regular-file read or write (at most 16 MiB), `fd_sync` when 64 syncs of the engine are already in flight, a `PIPE_BUF` chunk written to a host descriptor that could not be reopened (no `/proc`, a pseudo-terminal's master side, a device other than a terminal) after a poll saw it writable | not interruptible: the teardown grace (`wt_run_config_set_teardown_grace_ms`, default 5 s) bounds the wait |
///
/// A thread still going after the grace makes no further callback: no callback of the
/// run starts after `wt_run` returned, and one that such a thread is inside goes on until
/// it returns (see "Callbacks and `user_data`" at the top).
///
/// The host process never exits because of the guest.
///
/// Returns NULL and fills `*exit_out` when the run started (whatever way it ended; release
/// `exit_out->message` with `wt_exit_clear`). Returns an error and leaves `*exit_out`
/// untouched when it could not start (NULL arguments, a module from another engine, no
/// `_start`, link errors, a preopen directory that cannot be opened, …). Instantiation
/// happens on the main guest thread: a module start function that traps ends the run as
/// `WT_EXIT_TRAP` of thread 0, and one that never returns is stopped by timeout or cancel.
/// `module` must have been loaded by `engine`. Thread-safe: many host threads may call
/// `wt_run` on the same engine and module at once.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run(
    engine: *const wt_engine_t,
    module: *const wt_module_t,
    config: *const wt_run_config_t,
    exit_out: *mut wt_exit_t,
) -> *mut wt_error_t {
    ffi_boundary! {
        let out = try_mut!(exit_out);
        start(engine, module, config, Run::start, |run| *out = wt_exit_t::from_exit(run.wait()))
    }
}

/// The opaque type behind `wt_run_t`.
pub struct wt_run {
    run: Run,
}
/// A run started with `wt_run_start`, going on in the background: a supervisor thread
/// enforces its timeout and stops its threads when it ends, whether or not anyone waits.
/// Thread-safe: `wt_run_cancel`, `wt_run_wait` and `wt_run_try_wait` may be called from
/// any host threads at once. Owned by the caller.
///
/// Methods:
/// - `wt_run_start`: starts a run
/// - `wt_run_cancel`: ends it with `WT_EXIT_CANCELLED`
/// - `wt_run_wait`: blocks until it ended, then gives how
/// - `wt_run_try_wait`: gives how it ended if it has, without blocking
/// - `wt_run_free`: cancels it if it still goes on, joins its threads, releases it
///
/// Lifecycle: 1. `wt_run_start`; 2. `wt_run_cancel`, `wt_run_wait`, `wt_run_try_wait` in
/// any order, any number of times, from any threads; 3. `wt_run_free`, not concurrently
/// with the other calls.
pub type wt_run_t = wt_run;
impl Handle for wt_run {}

/// Starts a run like `wt_run` but returns at once. A supervisor thread enforces the
/// timeout and stops the guest's threads when the run ends, whether or not anyone waits.
/// On success writes the run to `*run_out` (owned by the caller: release it with
/// `wt_run_free`) and returns NULL; on failure returns an error and leaves `*run_out`
/// untouched.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_start(
    engine: *const wt_engine_t,
    module: *const wt_module_t,
    config: *const wt_run_config_t,
    run_out: *mut *mut wt_run_t,
) -> *mut wt_error_t {
    ffi_boundary! {
        let out = try_mut!(run_out);
        start(engine, module, config, Run::start_background, |run| {
            *out = wt_run { run }.into_raw();
        })
    }
}

/// Ends the run with `WT_EXIT_CANCELLED` unless it already ended; every guest thread is
/// stopped wherever it is, within milliseconds. Returns at once. Safe from any thread, any
/// number of times, also after the run ended (then it does nothing).
///
/// Async-signal-safe: a signal handler may call it (the Ctrl-C pattern). It takes no lock,
/// allocates nothing and leaves `errno` as it was: it records the cancel and wakes the
/// run's supervisor thread, which ends the run. From this call on, the run's outcome is
/// the cancel unless it had ended already. (Should the process have been out of threads
/// when the run started, so that it has no supervisor thread, the run ends at the next
/// `wt_run_wait`, `wt_run_try_wait` or `wt_run_free`.) The run must stay alive while a
/// handler may use it: clear the pointer the handler reads, and free the run only once no
/// handler can still be running with the old one (see "Signals" at the top).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_cancel(run: *const wt_run_t) {
    ffi_boundary! {
        // SAFETY: NULL or a live run (header contract).
        if let Some(r) = unsafe { run.as_ref() } { r.run.ask_cancel(); }
    }
}

/// Blocks until the run ended and every thread of it has been joined (or outlived the
/// teardown grace), then fills `*exit_out` (release `exit_out->message` with
/// `wt_exit_clear`) and returns NULL. From then on no callback of the run starts (see
/// `wt_run_free` for one that a thread past the grace is inside). May be called more
/// than once; each call reports the same outcome.
///
/// Returns an error, and leaves `*exit_out` untouched, for NULL arguments and when
/// called from one of the run's own callbacks (thread start or exit, output, diagnostic,
/// on a guest thread or on the supervisor), where it would wait for itself.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_wait(run: *const wt_run_t, exit_out: *mut wt_exit_t) -> *mut wt_error_t {
    ffi_boundary! {
        let run = try_ref!(run);
        let out = try_mut!(exit_out);
        if run.run.in_own_callback() {
            return wt_error_t::raw(
                crate::error::ErrorKind::Misuse,
                0,
                "wt_run_wait called from one of the run's own callbacks: the run cannot end while it runs",
            );
        }
        *out = wt_exit_t::from_exit(run.run.wait());
        std::ptr::null_mut()
    }
}

/// Does not block: if the run has ended and all its threads are joined, fills
/// `*exit_out` (release its message with `wt_exit_clear`) and returns true, and from
/// then on no callback of the run starts (as after `wt_run_wait`); otherwise (or if an
/// argument is NULL, or when called from one of the run's own callbacks) returns false
/// and leaves `*exit_out` untouched.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_try_wait(run: *const wt_run_t, exit_out: *mut wt_exit_t) -> bool {
    ffi_boundary! {
        // SAFETY: NULL or live pointers (header contract).
        let (Some(run), Some(out)) = (unsafe { run.as_ref() }, unsafe { exit_out.as_mut() }) else {
            return false;
        };
        match run.run.try_wait() {
            Some(exit) => { *out = wt_exit_t::from_exit(exit); true }
            None => false,
        }
    }
}

/// Releases a run. A run still going is cancelled and its threads joined first. No
/// callback of the run starts after this returns. A thread that has not stopped within
/// the teardown grace (`wt_run_config_set_teardown_grace_ms`) is left to stop on its own
/// at its next interruption point and makes no further callback; if it was inside a
/// callback when the grace ran out, that callback goes on until it returns, as the only
/// one of the run that can still be running after this call. So `user_data` may be
/// freed after this call unless a callback may outlast the grace; a host whose
/// callbacks can should keep `user_data` until its own callback says it returned (the
/// Python and Go bindings keep such a run's callback state for good).
///
/// Called from one of the run's own callbacks (where joining would wait for that very
/// callback), it cancels the run and returns at once; the release completes on a thread
/// of the library once the callback returned, and no further callback of the run is
/// made after that. `user_data` must then stay valid until the calling callback
/// returns; other callbacks of the run may still be running when this returns.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_free(run: *mut wt_run_t) {
    ffi_boundary! {
        // SAFETY: NULL or from `wt_run_start`, not yet freed, not in use by another call.
        unsafe { wt_run::free(run) }
    }
}

/// Releases `exit->message` and sets it to NULL. Safe to call on any `wt_exit_t` filled by
/// this library, any number of times.
#[unsafe(no_mangle)]
pub extern "C" fn wt_exit_clear(exit: *mut wt_exit_t) {
    ffi_boundary! {
        // SAFETY: NULL or a `wt_exit_t` filled by this library (header contract).
        let Some(exit) = (unsafe { exit.as_mut() }) else { return };
        let message = std::mem::replace(&mut exit.message, std::ptr::null_mut());
        if !message.is_null() {
            // SAFETY: made by `CString::into_raw` in `from_exit` and not yet released.
            drop(unsafe { CString::from_raw(message) });
        }
    }
}

/// The shared body of `wt_run` and `wt_run_start`: checks the arguments, starts the run
/// with `how`, and hands it to `done`.
fn start(
    engine: *const wt_engine_t,
    module: *const wt_module_t,
    config: *const wt_run_config_t,
    how: fn(&crate::Module, &RunConfig) -> anyhow::Result<Run>,
    done: impl FnOnce(Run),
) -> *mut wt_error_t {
    let engine = try_ref!(engine);
    let module = try_ref!(module);
    if !module.inner.belongs_to(&engine.inner) {
        return ArgError::misuse("the module was loaded by a different engine").into_raw();
    }
    let default = RunConfig::default();
    // SAFETY: NULL or a live config (header contract).
    let config = unsafe { config.as_ref() }.map_or(&default, |c| &c.inner);
    wt_error_t::from_result(how(&module.inner, config), done)
}
