//! `wt_run_config_t`: what a run gets — arguments, environment, directories, limits.
//! Its stdio setters are in `stdio.rs`, its callbacks in `callbacks.rs`.

use std::ffi::c_char;
use std::time::Duration;

use super::args::{path_arg, str_arg, with_live, ArgError};
use super::boundary::NotError;
use super::error::wt_error_t;
use super::handle::Handle;
use crate::config::{Preopen, PreopenSocket, RunConfig};

/// `WT_NO_TIMEOUT` in the header (cbindgen.toml).
const NO_TIMEOUT: u64 = 0;
/// `WT_NO_MEMORY_LIMIT` in the header (cbindgen.toml).
const NO_MEMORY_LIMIT: u64 = 0;
/// `WT_NO_WRITE_LIMIT` in the header (cbindgen.toml).
const NO_WRITE_LIMIT: u64 = u64::MAX;

/// The opaque type behind `wt_run_config_t`.
pub struct wt_run_config {
    pub(crate) inner: RunConfig,
}
/// Settings for runs: arguments, environment, directories, limits, stdio, callbacks. Plain
/// data: change it from one thread at a time. A run copies it when it starts, so one
/// config may serve many runs and be changed or freed while they go on. Owned by the
/// caller.
///
/// Methods:
/// - `wt_run_config_new`: a config with the defaults
/// - `wt_run_config_free`: releases it
/// - arguments, environment, directories: `wt_run_config_push_arg`,
///   `wt_run_config_push_env`, `wt_run_config_inherit_env`, `wt_run_config_preopen_dir`,
///   `wt_run_config_preopen_dir_readonly`
/// - listening sockets: `wt_run_config_preopen_socket`, `wt_run_config_preopen_tcp_listener`
/// - limits: `wt_run_config_set_max_threads`, `wt_run_config_set_max_fds`,
///   `wt_run_config_set_max_memory`, `wt_run_config_set_max_table_elements`,
///   `wt_run_config_set_max_memories`, `wt_run_config_set_max_instance_bytes`,
///   `wt_run_config_set_max_write_bytes`, `wt_run_config_set_max_files_created`,
///   `wt_run_config_set_timeout_ms`, `wt_run_config_set_call_timeout_ms`,
///   `wt_run_config_set_teardown_grace_ms`
/// - host functions: `wt_run_config_define_func`
/// - core dumps: `wt_run_config_set_coredump_path`
/// - output: `wt_run_config_set_output_inherit`, `wt_run_config_set_output_null`,
///   `wt_run_config_set_output_file`, `wt_run_config_set_output_fd`,
///   `wt_run_config_set_output_callback`
/// - input: `wt_run_config_set_stdin_inherit`, `wt_run_config_set_stdin_null`,
///   `wt_run_config_set_stdin_bytes`, `wt_run_config_set_stdin_file`,
///   `wt_run_config_set_stdin_fd`
/// - callbacks: `wt_run_config_set_thread_start_callback`,
///   `wt_run_config_set_thread_exit_callback`, `wt_run_config_set_diagnostic_callback`
///
/// Lifecycle: 1. `wt_run_config_new`; 2. the setters; 3. `wt_run`, `wt_run_start` or
/// `wt_instance_new`, any number of times (NULL instead of a config runs with the defaults);
/// 4. `wt_run_config_free`, at any time after the runs started.
pub type wt_run_config_t = wt_run_config;
impl NotError for wt_run_config {}
impl Handle for wt_run_config {}

/// Applies `f` to the config if it is not NULL.
pub(super) fn with_config(config: *mut wt_run_config_t, f: impl FnOnce(&mut RunConfig)) {
    with_live(config, |c| f(&mut c.inner));
}

/// A new run configuration with the defaults: argv = {"wasm"}, no environment, no
/// directories, stdin/stdout/stderr inherited from the host process, at most 1024 spawned
/// threads alive at once, 256 descriptors, 10 000 000 table elements, 1024 private
/// memories, 256 MiB of instances, no memory cap but the module's, no cap on what the
/// guest writes or creates under its directories, no timeout, a 5000 ms teardown grace,
/// no callbacks, no core dump. Owned
/// by the caller; release it with `wt_run_config_free`. Never NULL but after a panic
/// inside the library.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_new() -> *mut wt_run_config_t {
    ffi_boundary! { wt_run_config { inner: RunConfig::default() }.into_raw() }
}

/// Releases a run configuration. Runs already started are not affected.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_free(config: *mut wt_run_config_t) {
    ffi_boundary! {
        // SAFETY: NULL or from `wt_run_config_new`, not yet freed (header contract).
        unsafe { wt_run_config::free(config) }
    }
}

/// Appends one argument to the guest's argv (`argv[0]` first). `arg` must be UTF-8; it is
/// copied. Returns NULL on success, else an error (config unchanged).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_push_arg(config: *mut wt_run_config_t, arg: *const c_char) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        let arg = try_arg!(str_arg(arg, "arg"));
        config.inner.args.push(arg.to_owned());
        std::ptr::null_mut()
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
        let key = try_arg!(str_arg(key, "key"));
        let value = try_arg!(str_arg(value, "value"));
        if key.is_empty() || key.contains('=') {
            return ArgError::misuse(format!("environment key {key:?} must be non-empty and contain no '='")).into_raw();
        }
        config.inner.env.push((key.to_owned(), value.to_owned()));
        std::ptr::null_mut()
    }
}

/// Passes the host process's environment to the guest when `inherit` is true (default
/// false: the guest sees only variables pushed with `wt_run_config_push_env`, which come
/// after the inherited ones).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_inherit_env(config: *mut wt_run_config_t, inherit: bool) {
    ffi_boundary! { with_config(config, |c| c.inherit_env = inherit) }
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

fn preopen(
    config: *mut wt_run_config_t,
    host_path: *const c_char,
    guest_path: *const c_char,
    read_only: bool,
) -> *mut wt_error_t {
    let config = try_mut!(config);
    let host = try_arg!(path_arg(host_path, "host_path"));
    let guest = try_arg!(str_arg(guest_path, "guest_path"));
    config.inner.preopens.push(Preopen { host, guest: guest.to_owned(), read_only });
    std::ptr::null_mut()
}

/// Gives the guest a listening socket the host owns: `fd` must be a bound, listening
/// stream socket (TCP over IPv4 or IPv6, or Unix). It is duplicated now (the caller keeps
/// `fd` and may close it) and made non-blocking: `O_NONBLOCK` belongs to the open socket,
/// so the caller's `fd` becomes non-blocking too. Each run duplicates it again, so neither
/// the guest closing its descriptor nor the run's end closes the host's listener; several
/// runs may accept on it at once (each connection goes to one of them).
///
/// Descriptor numbers: the guest finds stdin, stdout and stderr at 0, 1 and 2, then the
/// sockets of `wt_run_config_preopen_socket` and `wt_run_config_preopen_tcp_listener` at
/// 3, 4, ... in the order they were added, then the preopened directories (the numbering
/// of the Wasmtime 46 CLI's `-S listenfd` and `-S tcplisten`). A socket's `fd_fdstat_get`
/// says `socket_stream` and no `nonblock` flag: `sock_accept` waits for a connection
/// until the guest sets `nonblock` (`fd_fdstat_set_flags`, or `fcntl(O_NONBLOCK)` in C);
/// then it fails with `again`. `poll_oneoff` on it reports a pending connection as
/// readable. Accepted connections are counted by `wt_run_config_set_max_fds` (past it
/// `sock_accept` fails with `mfile` and the connection stays in the backlog) and closed
/// when the run ends. A guest thread waiting in `sock_accept`, `sock_recv`, `sock_send`,
/// `fd_read`, `fd_write` or `poll_oneoff` on a socket is stopped by the run's end like
/// anywhere else.
///
/// Returns NULL on success, else an error (config unchanged): a misuse for a negative
/// `fd`, an I/O error for anything but a listening stream socket.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_preopen_socket(config: *mut wt_run_config_t, fd: i32) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        let own = try_arg!(super::stdio::dup_fd(fd));
        let socket = try_arg!(
            PreopenSocket::from_listener(std::os::fd::AsFd::as_fd(&own))
                .map_err(|e| ArgError::io(format_args!("descriptor {fd} cannot be a preopened listener"), &e))
        );
        config.inner.sockets.push(socket);
        std::ptr::null_mut()
    }
}

/// Binds a TCP socket to `address` ("127.0.0.1:8080", "[::1]:8080"; an IP address and a
/// port, no host names; port 0 picks a free port), listens on it (`SO_REUSEADDR`, a
/// backlog of 128) and gives it to the guest as `wt_run_config_preopen_socket` does.
/// The socket is the config's: it stays bound until the config and every run it started
/// are freed. `port_out` (NULL: not wanted) receives the port bound. Returns NULL on
/// success, else an error (config unchanged): a misuse for an address that does not
/// parse, an I/O error when binding fails.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_preopen_tcp_listener(
    config: *mut wt_run_config_t,
    address: *const c_char,
    port_out: *mut u16,
) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        let address = try_arg!(str_arg(address, "address"));
        if address.parse::<std::net::SocketAddr>().is_err() {
            return ArgError::misuse(format!("{address:?} is not an IP address and port")).into_raw();
        }
        let bound = PreopenSocket::bind_tcp(address).and_then(|s| Ok((s.local_addr()?.port(), s)));
        let (port, socket) = try_arg!(bound.map_err(|e| ArgError::io(format_args!("listening on {address}"), &e)));
        config.inner.sockets.push(socket);
        // SAFETY: NULL or a valid pointer to a u16 (header contract).
        if let Some(out) = unsafe { port_out.as_mut() } {
            *out = port;
        }
        std::ptr::null_mut()
    }
}

/// Sets the most spawned threads alive at once (the main thread not counted; default
/// 1024; 0 = the guest may spawn none). A thread counts until its `wasi_thread_start`
/// returns, so a guest that joined a thread may spawn another. Past the limit
/// `wasi::thread-spawn` returns a negative value (after waiting up to 20 ms for a thread
/// that is just finishing; at once for 0) and the guest goes on.
///
/// What one live guest thread costs the host process (measured with the default engine
/// settings, by `cargo bench --bench fanout`): an OS thread with a native stack of
/// `max_wasm_stack` + 2 MiB + 256 KiB (3.25 MiB address space by default; the last 256
/// KiB, untouched until a signal, are its signal stack), 15 KiB of RSS while it waits in
/// `memory.atomic.wait` (19 KiB sleeping in `poll_oneoff`), and 2 memory mappings, in C
/// and Rust hosts alike. Linux's default `vm.max_map_count` (65 530 mappings per process)
/// thus allows about 30 000 guest threads alive at once in one process, all runs
/// together; the threads-max and `RLIMIT_NPROC` limits apply too. 10 000 threads work
/// with the defaults.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_max_threads(config: *mut wt_run_config_t, max_threads: u32) {
    ffi_boundary! { with_config(config, |c| c.limits.max_threads = max_threads) }
}

/// Sets the most descriptors a run may have open at once, stdin, stdout, stderr,
/// preopened sockets and directories included (default 256). Past it `path_open` and
/// `sock_accept` fail with the WASI errno `mfile` and the guest goes on; the host process's own descriptors are never
/// exhausted by a guest. A limit that leaves no room for stdio and the preopens (0
/// included) makes runs fail to start.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_max_fds(config: *mut wt_run_config_t, max_fds: u32) {
    ffi_boundary! { with_config(config, |c| c.limits.max_fds = max_fds) }
}

/// Caps the guest's linear memory at `bytes` or `WT_NO_MEMORY_LIMIT` (the default: only
/// the module's own maximum). `bytes` is rounded down to 64 KiB pages; growing past it
/// fails (`memory.grow` returns -1) and the guest goes on. A cap below the module's
/// minimum makes runs fail to start.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_max_memory(config: *mut wt_run_config_t, bytes: u64) {
    ffi_boundary! { with_config(config, |c| c.limits.max_memory = (bytes != NO_MEMORY_LIMIT).then_some(bytes)) }
}

/// Sets the most table elements (function references) all threads' tables may hold
/// together (default 10 000 000, about 80 MB; 0 = no table may have an element).
/// `table.grow` past it returns -1; a thread whose initial tables do not fit fails to
/// start (its spawn returns an error; for the main thread the run ends with
/// `WT_EXIT_TRAP`).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_max_table_elements(config: *mut wt_run_config_t, elements: u64) {
    ffi_boundary! { with_config(config, |c| c.limits.max_table_elements = elements) }
}

/// Sets the most private (unshared) memories all threads' instances may define together
/// (default 1024; 0 = none). Every such memory, one of 0 pages included, reserves
/// 4 GiB + 32 MiB of the host's address space and two mappings, whatever its size (the
/// engine reserves each 32-bit memory whole), so this bounds the address space a run
/// takes: about 4 TiB at the default. A thread whose instance's memories do not fit is
/// not started: its spawn fails (the diagnostic callback says why); for the main thread
/// the run fails to start (`WT_ERROR_LIMIT`). The shared memory is not counted.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_max_memories(config: *mut wt_run_config_t, memories: u32) {
    ffi_boundary! { with_config(config, |c| c.limits.max_memories = memories) }
}

/// Sets the most host memory, in bytes, all threads' instances may take together for
/// themselves (default 256 MiB): an instance's context holds about 32 bytes per global,
/// 32 per function that escapes (into a table, an element segment or an export) and 32
/// per import, plus a few hundred bytes per table and memory, and the library counts it
/// from above when the thread starts (a typical C program's instance takes a few KiB; a
/// module with a million globals about 32 MiB per thread). Table elements and linear
/// memory count against `wt_run_config_set_max_table_elements` and
/// `wt_run_config_set_max_memory` instead. A thread whose instance does not fit is not
/// started: its spawn fails (the diagnostic callback says why); for the main thread the
/// run fails to start (`WT_ERROR_LIMIT`).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_max_instance_bytes(config: *mut wt_run_config_t, bytes: u64) {
    ffi_boundary! { with_config(config, |c| c.limits.max_instance_bytes = bytes) }
}

/// Caps the bytes the guest may write, in all, to regular files (and block devices) it
/// opened under its preopened directories, at `bytes` or `WT_NO_WRITE_LIMIT` (the
/// default: no cap). Every byte written counts, also over old ones; removing files gives
/// nothing back. A write that would pass the cap writes what is left (a short write, as
/// on a full disk); then `fd_write` and `fd_pwrite` fail with the WASI errno `dquot` and
/// the guest goes on. Output to stdout and stderr, pipes, devices and sockets is not
/// counted.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_max_write_bytes(config: *mut wt_run_config_t, bytes: u64) {
    ffi_boundary! { with_config(config, |c| c.limits.max_write_bytes = (bytes != NO_WRITE_LIMIT).then_some(bytes)) }
}

/// Caps the files, directories, symlinks and hard links the guest may create under its
/// preopened directories, at `files` or `WT_NO_WRITE_LIMIT` (the default: no cap). Past
/// it, `path_open` with `oflags::creat` of a file that does not exist,
/// `path_create_directory`, `path_symlink` and `path_link` fail with the WASI errno
/// `dquot` and the guest goes on; opening a file that exists still works. With a cap,
/// `path_open` creates with `O_EXCL` so that it knows whether it created.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_max_files_created(config: *mut wt_run_config_t, files: u64) {
    ffi_boundary! { with_config(config, |c| c.limits.max_files_created = (files != NO_WRITE_LIMIT).then_some(files)) }
}

/// Ends a run with `WT_EXIT_TIMEOUT` once it has gone on for `timeout_ms` milliseconds,
/// or never with `WT_NO_TIMEOUT` (the default).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_timeout_ms(config: *mut wt_run_config_t, timeout_ms: u64) {
    ffi_boundary! {
        with_config(config, |c| c.timeout = (timeout_ms != NO_TIMEOUT).then(|| Duration::from_millis(timeout_ms)))
    }
}

/// For instances (`wt_instance_new`): ends the instance with `WT_EXIT_TIMEOUT` when one
/// export call has gone on for `timeout_ms` milliseconds, or never with `WT_NO_TIMEOUT`
/// (the default). It ends the whole instance, not only that call (every call in flight
/// and later then fails with `WT_ERROR_ENDED`): stopping a thread mid-call could leave
/// the guest's locks held. Runs (`wt_run`) ignore it.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_call_timeout_ms(config: *mut wt_run_config_t, timeout_ms: u64) {
    ffi_boundary! {
        with_config(config, |c| c.call_timeout = (timeout_ms != NO_TIMEOUT).then(|| Duration::from_millis(timeout_ms)))
    }
}

/// Sets how long the end of a run waits for its threads to stop, in milliseconds
/// (default 5000; 0 = not at all). Threads normally stop within milliseconds wherever
/// they are; only a thread inside a host callback that does not return, or inside one
/// long wasm instruction (a `memory.fill` of gigabytes), can take longer. Past the grace
/// `wt_run` and `wt_run_wait` return anyway, the diagnostic callback names the threads,
/// and they are stopped as soon as they reach their next interruption point.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_teardown_grace_ms(config: *mut wt_run_config_t, grace_ms: u64) {
    ffi_boundary! { with_config(config, |c| c.teardown_grace = Duration::from_millis(grace_ms)) }
}

/// When a run with this config ends by a trap (`WT_EXIT_TRAP`), write a WebAssembly core
/// dump to `path` (created or replaced once every thread has stopped), in the format of
/// the tool-conventions `Coredump.md` that Wasmtime and `wasmgdb` use: the run's shared
/// memory, the trapping thread's globals and private memories, and one `corestack`
/// section per thread ("main", "thread N"; the trapping thread's first) in the function
/// indices and code offsets of the module the host loaded. `path` may be any bytes; NULL
/// clears the setting. The directory of `path` is opened when the run starts (`wt_run`
/// fails if it cannot be); the dump is written to a new file there (mode 0600) and renamed
/// to `path`, so a symlink or FIFO a guest put at `path` is replaced, never written
/// through. A failure to write does not change the run's result; it is reported through
/// the diagnostic callback. An instance (`wt_instance_new`) that ends by a trap writes
/// one the same way when it is closed, with one difference: when the trap was in an
/// export call, that thread's private memories (a module without a shared memory) are
/// left out, since its store stays with the instance for `wt_instance_memory_read`.
/// Returns NULL on success, else an error (config unchanged).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_coredump_path(
    config: *mut wt_run_config_t,
    path: *const c_char,
) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        config.inner.coredump_path = if path.is_null() { None } else { Some(try_arg!(path_arg(path, "path"))) };
        std::ptr::null_mut()
    }
}
