//! What the host hears of a run while it goes on: the thread start and exit callbacks and
//! the diagnostic callback ([`Hooks`], part of a [`RunConfig`](crate::RunConfig)), and a
//! run's calls of them ([`RunHooks`]), with the run's budget of diagnostics.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
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

thread_local! {
    /// The gates ([`Gate::id`]) of the callbacks running on this thread, innermost last.
    static INSIDE: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Every call of one run's callbacks (thread start and exit, diagnostic, output) goes
/// through its gate, which knows which threads are inside one (a wait for the run there
/// would wait for itself) and, once closed, lets no callback start again.
#[derive(Default)]
pub(crate) struct Gate {
    closed: AtomicBool,
    /// Callbacks not made because the gate was closed.
    suppressed: AtomicU64,
}

/// Takes a callback off this thread's list when it returns or unwinds.
struct Inside;

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.with(|v| v.borrow_mut().pop());
    }
}

impl Gate {
    fn id(&self) -> usize {
        self as *const Gate as usize
    }

    /// Runs the callback `f` unless the gate is closed (then `None`, and it counts as
    /// suppressed).
    pub(crate) fn call<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        if self.closed.load(Ordering::SeqCst) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        INSIDE.with(|v| v.borrow_mut().push(self.id()));
        let _inside = Inside;
        Some(f())
    }

    /// True when the calling thread is inside a callback of this gate (however deeply,
    /// through other runs' callbacks in between).
    pub(crate) fn is_inside(&self) -> bool {
        INSIDE.with(|v| v.borrow().contains(&self.id()))
    }

    /// Lets no callback start from now on (those running go on until they return).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// How many callbacks were not made because the gate was closed.
    pub(crate) fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }
}

/// One run's calls of its [`Hooks`], each through the run's [`Gate`].
pub(crate) struct RunHooks {
    hooks: Hooks,
    gate: Arc<Gate>,
    diagnostics_left: AtomicU32,
}

impl RunHooks {
    pub(crate) fn new(hooks: Hooks, gate: Arc<Gate>) -> RunHooks {
        RunHooks { hooks, gate, diagnostics_left: AtomicU32::new(MAX_DIAGNOSTICS) }
    }

    /// Runs a host function's callback `f` through the run's gate: `None` when the gate
    /// is closed (the run's end was reported to the host).
    pub(crate) fn call<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        self.gate.call(f)
    }

    /// Thread `tid` is about to run wasm. A panic goes to the caller, which reports the
    /// thread as trapped.
    pub(crate) fn thread_started(&self, tid: i32) {
        if let Some(cb) = &self.hooks.on_thread_start {
            self.gate.call(|| cb(tid));
        }
    }

    /// Thread `tid` ended `how`.
    pub(crate) fn thread_exited(&self, tid: i32, how: &ThreadExit) {
        if let Some(cb) = &self.hooks.on_thread_exit {
            // A panicking Rust callback must not take the thread's bookkeeping with it.
            self.gate.call(|| catch_unwind(AssertUnwindSafe(|| cb(tid, how))));
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
        self.gate.call(|| catch_unwind(AssertUnwindSafe(|| cb(tid, &message))));
    }
}
