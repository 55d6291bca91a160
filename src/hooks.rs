//! What the host hears of a run while it goes on: the thread start and exit callbacks and
//! the diagnostic callback ([`Hooks`], part of a [`RunConfig`](crate::RunConfig)), and a
//! run's calls of them ([`RunHooks`]), with the run's budget of diagnostics.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::exit::ThreadExit;

/// Called once per thread of a run, on that thread, after it stopped running wasm.
pub type ThreadExitCallback = Arc<dyn Fn(i32, &ThreadExit) + Send + Sync>;

/// Called once per thread of a run, on that thread, just before it starts running wasm.
pub type ThreadStartCallback = Arc<dyn Fn(i32) + Send + Sync>;

/// Called when something a guest did failed in a way the guest itself only sees as an
/// error code (a refused `thread-spawn` and why), or the host should know about (threads
/// that did not stop in time): `(tid of the thread concerned, message)`.
pub type DiagnosticCallback = Arc<dyn Fn(i32, &str) + Send + Sync>;

/// Most diagnostic callbacks one run makes; the last says that more were dropped.
pub const MAX_DIAGNOSTICS: u32 = 64;

/// The callbacks of a run (none by default).
#[derive(Clone, Default)]
pub struct Hooks {
    pub on_thread_exit: Option<ThreadExitCallback>,
    pub on_thread_start: Option<ThreadStartCallback>,
    /// See [`DiagnosticCallback`]; at most [`MAX_DIAGNOSTICS`] calls per run.
    pub on_diagnostic: Option<DiagnosticCallback>,
}

/// One run's calls of its [`Hooks`].
pub(crate) struct RunHooks {
    hooks: Hooks,
    diagnostics_left: AtomicU32,
}

impl RunHooks {
    pub(crate) fn new(hooks: Hooks) -> RunHooks {
        RunHooks { hooks, diagnostics_left: AtomicU32::new(MAX_DIAGNOSTICS) }
    }

    /// Thread `tid` is about to run wasm. A panic goes to the caller, which reports the
    /// thread as trapped.
    pub(crate) fn thread_started(&self, tid: i32) {
        if let Some(cb) = &self.hooks.on_thread_start {
            cb(tid);
        }
    }

    /// Thread `tid` ended `how`.
    pub(crate) fn thread_exited(&self, tid: i32, how: &ThreadExit) {
        if let Some(cb) = &self.hooks.on_thread_exit {
            // A panicking Rust callback must not take the thread's bookkeeping with it.
            let _ = catch_unwind(AssertUnwindSafe(|| cb(tid, how)));
        }
    }

    /// Tells the host (diagnostic callback) about something thread `tid` ran into. The
    /// run's budget of messages ends with one that says more were dropped.
    pub(crate) fn diagnose(&self, tid: i32, message: &str) {
        let Some(cb) = &self.hooks.on_diagnostic else { return };
        let left = self.diagnostics_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        let message = match left {
            Ok(1) => format!("{message} (further diagnostics of this run are dropped)"),
            Ok(_) => message.to_string(),
            Err(_) => return,
        };
        // A panicking Rust callback must not unwind into the guest's host call.
        let _ = catch_unwind(AssertUnwindSafe(|| cb(tid, &message)));
    }
}
