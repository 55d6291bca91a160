//! The integration tests: one test binary (each links Wasmtime, so one link instead of
//! one per file), one module per subject. Tests here that count the process's threads,
//! descriptors, mappings or memory, or that change process-wide state, run alone in a
//! child process (`common::child::isolated`); the long leak and memory measurements,
//! which no other test may run beside, are a binary of their own (`tests/process`).
//! Every test is bounded in time (`common::within`, `common::run_watched`, the child
//! process limit) so that a deadlock fails it instead of hanging the suite.

#[path = "../common/mod.rs"]
mod common;

/// Bad modules, arguments and pointers.
mod bad_input;
/// The C ABI, the Python ctypes test and wt-run.
mod c_api;
/// Backtraces, stop locations and core dumps.
mod diagnostics;
/// Environment, preopens, serialized modules, callbacks.
mod host_control;
/// What instances take (private memories, host memory) and what a guest writes under
/// its preopens.
mod instance_caps;
/// Interruption points and the interrupt page.
mod interruption;
/// The caps of a run: descriptors, memory, tables, threads, copies.
mod limits;
/// Loading: compile threads, load limits, bodies near Wasmtime's size limit.
mod loads;
/// Host loops proportional to guest input stop when the run ends.
mod long_calls;
/// Which module shapes load, and memories, tables and data segments.
mod module_shapes;
/// Host functions and instances with hand-written modules.
mod plugin;
/// The real-toolchain plugins (threaded reactors in C and Rust).
mod plugins;
/// Real Rust `std::thread` guests.
mod rust_guest;
/// Spawning, how a run ends, atomics: the run's semantics.
mod semantics;
/// Preopened listening sockets and threaded guest servers.
mod sockets;
/// Stdin, stdout and stderr.
mod stdio;
/// Cancel, timeout and drop stop every thread, wherever it is.
mod teardown;
/// WASI reads and writes of regular files straight into shared memory.
mod wasi_direct_io;
/// WASI `fd_*` calls.
mod wasi_fd;
/// WASI `path_*` calls and the sandbox.
mod wasi_path;
/// WASI `poll_oneoff` and sockets.
mod wasi_poll;
/// WASI `fd_sync` and `fd_datasync`.
mod wasi_sync;
