//! How a run, and each thread of it, ended.

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// `_start` returned (code 0) or some thread called `proc_exit(code)`.
    Code,
    /// Some thread trapped (or the host code serving it failed).
    Trap,
    /// The run's timeout elapsed.
    Timeout,
    /// The host cancelled the run.
    Cancelled,
}

/// How a run that started ended. Exactly one per run: the first event wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunExit {
    pub kind: ExitKind,
    /// The exit code for [`ExitKind::Code`]; 0 otherwise.
    pub code: i32,
    /// The thread that ended the run (0 = main); -1 for timeout and cancel.
    pub tid: i32,
    /// For traps: the trap message followed by the wasm backtrace.
    pub message: Option<String>,
    /// Threads that had not stopped when the teardown grace ran out (normally none):
    /// the result was given without waiting for them.
    pub unstopped: Vec<i32>,
}

impl RunExit {
    pub(crate) fn code(tid: i32, code: i32) -> Self {
        RunExit { kind: ExitKind::Code, code, tid, message: None, unstopped: Vec::new() }
    }
    pub(crate) fn trap(tid: i32, message: String) -> Self {
        RunExit { kind: ExitKind::Trap, code: 0, tid, message: Some(message), unstopped: Vec::new() }
    }
    pub(crate) fn host(kind: ExitKind) -> Self {
        RunExit { kind, code: 0, tid: -1, message: None, unstopped: Vec::new() }
    }
}

/// How one thread of a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThreadExit {
    /// `_start` or `wasi_thread_start` returned.
    Returned,
    /// The thread called `proc_exit(code)`.
    Exited(i32),
    /// The thread trapped; the message includes the wasm backtrace.
    Trapped(String),
    /// The thread was stopped because another thread (or the host) ended the run.
    Terminated {
        /// Where it was when it stopped: "wasm backtrace:" and one frame a line, innermost
        /// first, in the function indices and offsets of the module the host loaded.
        /// `None` when no wasm was on its stack (e.g. stopped before it started).
        backtrace: Option<String>,
    },
}

impl ThreadExit {
    /// True for [`ThreadExit::Terminated`], wherever the thread was.
    pub fn is_terminated(&self) -> bool {
        matches!(self, ThreadExit::Terminated { .. })
    }
}

/// The message of a caught panic, for errors and trap reports.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
