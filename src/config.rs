//! What one run gets: arguments, environment, directories, stdio, limits, callbacks.

use std::time::Duration;

use crate::hooks::Hooks;
use crate::hostfunc::HostFunc;
use crate::limits::Limits;
use crate::wasi::{Input, Output};

/// Default for [`RunConfig::teardown_grace`].
pub const DEFAULT_TEARDOWN_GRACE: Duration = Duration::from_secs(5);

pub use crate::wasi::{Preopen, PreopenSocket};

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
    /// Listening sockets the guest gets as descriptors 3, 4, ... in this order, before
    /// the preopened directories (as the Wasmtime 46 CLI's `--tcplisten`).
    pub sockets: Vec<PreopenSocket>,
    /// Every cap of the run: threads, descriptors, memory, table elements.
    pub limits: Limits,
    /// End the run with [`crate::ExitKind::Timeout`] after this long (an instance: this
    /// long after it was made).
    pub timeout: Option<Duration>,
    /// For an [`Instance`](crate::Instance): end it with [`crate::ExitKind::Timeout`]
    /// when one export call takes longer than this. It ends the whole instance, not just
    /// the call: a thread stopped mid-call could leave the guest's locks held.
    pub call_timeout: Option<Duration>,
    /// How long the end of a run waits for its threads to stop (default
    /// [`DEFAULT_TEARDOWN_GRACE`]). Threads stop within milliseconds unless one is in a
    /// long host callback or one long wasm instruction (a `memory.fill` of gigabytes);
    /// past the grace the result is given without them ([`RunExit::unstopped`](crate::RunExit)).
    pub teardown_grace: Duration,
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
    /// The thread start, thread exit and diagnostic callbacks.
    pub hooks: Hooks,
    /// Functions the host defines for the guest to import, linked into every instance
    /// of the run (each thread's, each call worker's). A module's function imports that
    /// are neither WASI nor `wasi::thread-spawn` must all be here, with their types.
    pub imports: Vec<HostFunc>,
    /// When the run ends by a trap, write a WebAssembly core dump here (replacing the
    /// file): the run's shared memory, the trapping thread's globals and private
    /// memories, and every thread's stack (the trapping thread's first), in the function
    /// indices and offsets of the module the host loaded. The directory is opened when the
    /// run starts ([`Run::start`](crate::Run::start) fails if it cannot be); the dump goes to
    /// a new file there, renamed over the path, so a symlink or FIFO a guest put there is
    /// replaced, never written through. A failure to write is reported through
    /// [`Hooks::on_diagnostic`].
    pub coredump_path: Option<std::path::PathBuf>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            args: Vec::new(),
            env: Vec::new(),
            preopens: Vec::new(),
            sockets: Vec::new(),
            limits: Limits::default(),
            timeout: None,
            call_timeout: None,
            inherit_env: false,
            teardown_grace: DEFAULT_TEARDOWN_GRACE,
            stdin: Input::Inherit,
            stdout: Output::Inherit,
            stderr: Output::Inherit,
            hooks: Hooks::default(),
            imports: Vec::new(),
            coredump_path: None,
        }
    }
}
