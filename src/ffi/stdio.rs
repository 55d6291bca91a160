//! The stdio setters of `wt_run_config_t`: where the guest's stdout and stderr go and
//! where its stdin comes from.

use std::ffi::{c_char, c_void};
use std::fs::File;
use std::os::fd::FromRawFd;
use std::sync::Arc;

use super::args::{byte_arg, path_arg, ArgError};
use super::callbacks::UserData;
use super::error::wt_error_t;
use super::run_config::{with_config, wt_run_config_t};
use crate::config::RunConfig;
use crate::wasi::{Input, Output};

/// Receives guest output: what thread `tid` wrote with one `fd_write`, `len` bytes at
/// `data` (valid only during the call). Called on the writing guest thread; calls for one
/// stream never overlap, and one `fd_write` is never split or mixed with another; calls
/// for stdout and stderr may, so `user_data` must be safe to use from any thread. It may
/// call `wt_run_cancel` on its own run (to stop a guest on some output); waiting for or
/// freeing that run there is refused or deferred (see "Threads" at the top).
pub type wt_output_callback_t =
    Option<unsafe extern "C" fn(user_data: *mut c_void, tid: i32, data: *const u8, len: usize)>;

/// Which output stream a setter changes: `WT_STDOUT` (1) or `WT_STDERR` (2).
fn output_slot(c: &mut RunConfig, stream: i32) -> Result<&mut Output, ArgError> {
    match stream {
        1 => Ok(&mut c.stdout),
        2 => Ok(&mut c.stderr),
        n => Err(ArgError::misuse(format!("stream must be 1 (stdout) or 2 (stderr), not {n}"))),
    }
}

/// Sets output stream `stream`, or returns an error.
fn set_output(
    config: *mut wt_run_config_t,
    stream: i32,
    make: impl FnOnce() -> Result<Output, ArgError>,
) -> *mut wt_error_t {
    let config = try_mut!(config);
    let slot = try_arg!(output_slot(&mut config.inner, stream));
    *slot = try_arg!(make());
    std::ptr::null_mut()
}

/// Guest output on `stream` (`WT_STDOUT` or `WT_STDERR`; any other number is an error)
/// goes to the host process's own stdout / stderr (the default), whatever fd 1 / 2 is at
/// each write. If that descriptor is closed when a run starts, the guest's is closed for
/// that run: its writes fail with `badf` (see "Descriptors" at the top).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_output_inherit(config: *mut wt_run_config_t, stream: i32) -> *mut wt_error_t {
    ffi_boundary! { set_output(config, stream, || Ok(Output::Inherit)) }
}

/// Guest output on `stream` (`WT_STDOUT` or `WT_STDERR`) is discarded; its writes
/// succeed.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_output_null(config: *mut wt_run_config_t, stream: i32) -> *mut wt_error_t {
    ffi_boundary! { set_output(config, stream, || Ok(Output::Null)) }
}

/// Guest output on `stream` (`WT_STDOUT` or `WT_STDERR`) goes to the file at `path` (any
/// bytes but NUL), created or truncated now. Runs using this config append to the same
/// open file.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_output_file(
    config: *mut wt_run_config_t,
    stream: i32,
    path: *const c_char,
) -> *mut wt_error_t {
    ffi_boundary! {
        set_output(config, stream, || {
            let path = path_arg(path, "path")?;
            File::create(&path).and_then(crate::hostfd::above_stdio).map(|f| Output::File(Arc::new(f))).map_err(|e| ArgError::io(format_args!("creating {}", path.display()), &e))
        })
    }
}

/// Guest output on `stream` (`WT_STDOUT` or `WT_STDERR`) is written to the host
/// descriptor `fd` (any open descriptor, 0 included), which is duplicated now: the caller
/// keeps ownership of `fd` and may close it. A negative `fd` is an error.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_output_fd(config: *mut wt_run_config_t, stream: i32, fd: i32) -> *mut wt_error_t {
    ffi_boundary! { set_output(config, stream, || dup_fd(fd).map(|f| Output::File(Arc::new(f)))) }
}

/// Guest output on `stream` (`WT_STDOUT` or `WT_STDERR`) is handed to `cb` with
/// `user_data` (see `wt_output_callback_t`). `cb` must not be NULL; `user_data` may be.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_output_callback(
    config: *mut wt_run_config_t,
    stream: i32,
    cb: wt_output_callback_t,
    user_data: *mut c_void,
) -> *mut wt_error_t {
    ffi_boundary! {
        let user_data = UserData::new(user_data);
        set_output(config, stream, || {
            let cb = cb.ok_or_else(|| ArgError::null("cb"))?;
            Ok(Output::Callback(Arc::new(move |tid, data: &[u8]| {
                // SAFETY: the host registered `cb` for this call shape; `data` outlives it.
                unsafe { cb(user_data.get(), tid, data.as_ptr(), data.len()) }
            })))
        })
    }
}

/// The guest's stdin is the host process's stdin (the default). If fd 0 is closed when a
/// run starts, the guest's is closed for that run: its reads fail with `badf` (see
/// "Descriptors" at the top).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_stdin_inherit(config: *mut wt_run_config_t) {
    ffi_boundary! { with_config(config, |c| c.stdin = Input::Inherit) }
}

/// The guest's stdin is empty: reads return end-of-file.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_stdin_null(config: *mut wt_run_config_t) {
    ffi_boundary! { with_config(config, |c| c.stdin = Input::Null) }
}

/// The guest's stdin is the `len` bytes at `data` (copied now; `len` 0 = empty), then
/// end-of-file. Each run reads them from the start.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_stdin_bytes(
    config: *mut wt_run_config_t,
    data: *const u8,
    len: usize,
) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        let bytes = try_arg!(byte_arg(data, len, "data"));
        config.inner.stdin = Input::Bytes(bytes.into());
        std::ptr::null_mut()
    }
}

/// The guest's stdin is the file at `path` (any bytes but NUL), opened by each run when
/// it starts (a run whose file cannot be opened fails to start).
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_stdin_file(config: *mut wt_run_config_t, path: *const c_char) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        config.inner.stdin = Input::Path(try_arg!(path_arg(path, "path")));
        std::ptr::null_mut()
    }
}

/// The guest's stdin is read from the host descriptor `fd` (a pipe, socket or file; any
/// open descriptor, 0 included), duplicated now: the caller keeps ownership of `fd`. A
/// negative `fd` is an error. A guest blocked reading it is still stopped promptly when
/// the run ends.
#[unsafe(no_mangle)]
pub extern "C" fn wt_run_config_set_stdin_fd(config: *mut wt_run_config_t, fd: i32) -> *mut wt_error_t {
    ffi_boundary! {
        let config = try_mut!(config);
        config.inner.stdin = Input::File(Arc::new(try_arg!(dup_fd(fd))));
        std::ptr::null_mut()
    }
}

/// A duplicate of the caller's descriptor, owned by the library.
pub(super) fn dup_fd(fd: i32) -> Result<File, ArgError> {
    if fd < 0 {
        return Err(ArgError::misuse(format!("{fd} is not a file descriptor")));
    }
    // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` only reads the descriptor number; an invalid one
    // yields EBADF, and the new descriptor it returns is ours alone.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, crate::hostfd::LOWEST) };
    if new < 0 {
        return Err(ArgError::io(format_args!("cannot duplicate descriptor {fd}"), &std::io::Error::last_os_error()));
    }
    // SAFETY: `new` is a fresh descriptor owned by nobody else.
    Ok(unsafe { File::from_raw_fd(new) })
}
