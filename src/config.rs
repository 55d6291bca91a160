//! What one run gets: arguments, environment, directories, limits, callbacks.

use std::path::PathBuf;
use std::time::Duration;

use crate::exit::{DiagnosticCallback, ThreadExitCallback, ThreadStartCallback};
use crate::io::{Input, Output};

/// Default for [`RunConfig::max_threads`].
pub const DEFAULT_MAX_THREADS: u32 = 1024;

/// Default for [`RunConfig::teardown_grace`].
pub const DEFAULT_TEARDOWN_GRACE: Duration = Duration::from_secs(5);

/// Default for [`RunConfig::max_table_elements`]: 10 million (about 80 MB of host memory).
pub const DEFAULT_MAX_TABLE_ELEMENTS: u64 = 10_000_000;

/// A host directory the guest may use under `guest` path.
#[derive(Clone, Debug)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// Settings for one run. Reusable: a run copies what it needs when it starts.
#[derive(Clone)]
pub struct RunConfig {
    /// `argv`, `argv[0]` first. Empty means the guest sees one argument, `"wasm"`.
    pub args: Vec<String>,
    /// Environment variables, in order, after the host's if `inherit_env`.
    pub env: Vec<(String, String)>,
    /// Pass the host process's environment to the guest (default false).
    pub inherit_env: bool,
    pub preopens: Vec<Preopen>,
    /// Most spawned threads running at once (the main thread not counted). A thread counts
    /// until its `wasi_thread_start` returns or it is stopped. Past the limit,
    /// `thread-spawn` returns a negative value to the guest (after waiting up to 20 ms for
    /// a thread that is just finishing).
    pub max_threads: u32,
    /// Most descriptors open at once in the run, stdio and preopened directories
    /// included. Past it, `path_open` fails with `mfile`.
    pub max_fds: u32,
    /// End the run with [`crate::ExitKind::Timeout`] after this long.
    pub timeout: Option<Duration>,
    /// The most linear memory the guest may have, in bytes; growing past it fails
    /// (`memory.grow` returns -1). `None` = only the module's own maximum.
    pub max_memory: Option<u64>,
    /// The most table elements (function references) all threads' tables may hold
    /// together; `table.grow` past it returns -1, and an instance whose tables do not fit
    /// fails to instantiate (default [`DEFAULT_MAX_TABLE_ELEMENTS`]).
    pub max_table_elements: u64,
    /// How long the end of a run waits for its threads to stop (default
    /// [`DEFAULT_TEARDOWN_GRACE`]). Threads stop within milliseconds unless one is in a
    /// long host callback or one long wasm instruction (a `memory.fill` of gigabytes);
    /// past the grace the result is given without them ([`RunExit::unstopped`](crate::RunExit)).
    pub teardown_grace: Duration,
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
    pub on_thread_exit: Option<ThreadExitCallback>,
    pub on_thread_start: Option<ThreadStartCallback>,
    /// See [`DiagnosticCallback`]; at most [`MAX_DIAGNOSTICS`] calls per run.
    pub on_diagnostic: Option<DiagnosticCallback>,
    /// When the run ends by a trap, write a WebAssembly core dump here (replacing the
    /// file): the run's shared memory, the trapping thread's globals and private
    /// memories, and every thread's stack (the trapping thread's first), in the function
    /// indices and offsets of the module the host loaded. The directory is opened when the
    /// run starts ([`Run::start`](crate::Run::start) fails if it cannot be); the dump goes to
    /// a new file there, renamed over the path, so a symlink or FIFO a guest put there is
    /// replaced, never written through. A failure to write is reported through
    /// [`RunConfig::on_diagnostic`].
    pub coredump_path: Option<std::path::PathBuf>,
}

/// Most diagnostic callbacks one run makes; the last says that more were dropped.
pub const MAX_DIAGNOSTICS: u32 = 64;

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            args: Vec::new(),
            env: Vec::new(),
            preopens: Vec::new(),
            max_threads: DEFAULT_MAX_THREADS,
            max_fds: crate::io::DEFAULT_MAX_FDS,
            timeout: None,
            inherit_env: false,
            max_memory: None,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            teardown_grace: DEFAULT_TEARDOWN_GRACE,
            stdin: Input::Inherit,
            stdout: Output::Inherit,
            stderr: Output::Inherit,
            on_thread_exit: None,
            on_thread_start: None,
            on_diagnostic: None,
            coredump_path: None,
        }
    }
}
