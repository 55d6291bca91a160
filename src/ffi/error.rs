//! `wt_error_t`: why a call failed, and its kind.

use std::ffi::{c_char, CString};

use super::args::c_string;
use super::handle::Handle;
use crate::error::{os_errno, ErrorKind};

/// What sort of failure an error is, for a host to branch on (`wt_error_kind`). The
/// message says more; the kind is stable where the message's wording is not.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wt_error_kind {
    /// An internal error of the library (a panic inside it, an unexpected failure inside
    /// Wasmtime), or one no other kind fits. Also the kind of a NULL error.
    WT_ERROR_OTHER = 0,
    /// The bytes are not a module wasithreads can compile: empty, neither WebAssembly nor
    /// WAT, invalid, a shape it does not support (two shared memories, a 64-bit one, ...),
    /// or serialized bytes it refuses (another version or engine settings, truncated).
    WT_ERROR_BAD_MODULE = 1,
    /// A valid module that cannot run as it is: an import neither the library (WASI
    /// preview 1, `wasi::thread-spawn`, one memory) nor the config's host functions
    /// provide, or a host function of another type, `wasi::thread-spawn`
    /// without a shared memory, a missing or mistyped `_start`, a memory the module needs
    /// that is not there.
    WT_ERROR_LINK = 2,
    /// A configured limit too low for the module (`wt_run_config_set_max_memory` below its
    /// minimum memory) or for stdio and the directories (`wt_run_config_set_max_fds`), or
    /// the OS refusing a thread or memory.
    WT_ERROR_LIMIT = 3,
    /// The API was misused: a NULL or non-UTF-8 argument, a setting out of range (opt
    /// level, wasm stack, stream, environment key, negative descriptor), a module loaded
    /// by another engine, a core dump path that names no file.
    WT_ERROR_MISUSE = 4,
    /// A host file, directory or descriptor operation failed: reading the module file,
    /// opening a preopened directory, a stdin or output file, duplicating a descriptor,
    /// opening the core dump's directory, Wasmtime's cache configuration.
    /// `wt_error_os_errno` gives the OS error.
    WT_ERROR_IO = 5,
    /// The instance ended (a trap or `proc_exit` in any of its threads, its timeout, a
    /// cancel or close), so the call did not run or did not return: `wt_instance_call`
    /// fills its `exit_out` with the instance's first exit; `wt_instance_new` when the
    /// module's start function or `_initialize` ended it (the message says how).
    WT_ERROR_ENDED = 6,
}
/// See `enum wt_error_kind`.
pub type wt_error_kind_t = wt_error_kind;

impl From<ErrorKind> for wt_error_kind {
    fn from(kind: ErrorKind) -> wt_error_kind {
        match kind {
            ErrorKind::BadModule => wt_error_kind::WT_ERROR_BAD_MODULE,
            ErrorKind::Link => wt_error_kind::WT_ERROR_LINK,
            ErrorKind::Limit => wt_error_kind::WT_ERROR_LIMIT,
            ErrorKind::Misuse => wt_error_kind::WT_ERROR_MISUSE,
            ErrorKind::Io => wt_error_kind::WT_ERROR_IO,
            ErrorKind::Ended => wt_error_kind::WT_ERROR_ENDED,
            ErrorKind::Other => wt_error_kind::WT_ERROR_OTHER,
        }
    }
}

/// The opaque type behind `wt_error_t`.
pub struct wt_error {
    message: CString,
    kind: wt_error_kind_t,
    os_errno: i32,
}
/// Why a call failed or was misused: returned by every function that can fail (NULL
/// means success). Owned by the caller. It never changes, so any thread may read it until
/// it is freed.
///
/// Methods:
/// - `wt_error_message`: the text
/// - `wt_error_kind`: what sort of failure it is (`wt_error_kind_t`), to branch on
/// - `wt_error_os_errno`: the OS error behind it, 0 if none
/// - `wt_error_free`: releases it
///
/// Lifecycle: 1. a failing call returns it; 2. `wt_error_message`, `wt_error_kind`,
/// `wt_error_os_errno`; 3. `wt_error_free`.
pub type wt_error_t = wt_error;
impl Handle for wt_error {}

impl wt_error {
    /// A new heap error of `kind` (with the OS error `os_errno`, 0 if none) for returning
    /// across the ABI.
    pub(crate) fn raw(kind: ErrorKind, os_errno: i32, message: impl Into<String>) -> *mut wt_error_t {
        wt_error { message: c_string(message), kind: kind.into(), os_errno }.into_raw()
    }

    /// The message, for an error a host callback returned.
    pub(crate) fn text(&self) -> String {
        self.message.to_string_lossy().into_owned()
    }

    /// NULL on success (after `ok` stored the value); on error, an error with the whole
    /// cause chain ("a: b: c"), the kind its maker gave it and its OS error.
    /// Out-parameters are only ever written by `ok`.
    pub(crate) fn from_result<T>(r: anyhow::Result<T>, ok: impl FnOnce(T)) -> *mut wt_error_t {
        match r {
            Ok(v) => {
                ok(v);
                std::ptr::null_mut()
            }
            Err(e) => wt_error_t::raw(ErrorKind::of(&e), os_errno(&e).unwrap_or(0), format!("{e:#}")),
        }
    }
}

/// The error's message: UTF-8, NUL-terminated, never NULL for a non-NULL `error`.
/// Valid until `wt_error_free(error)`. Returns NULL if `error` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wt_error_message(error: *const wt_error_t) -> *const c_char {
    ffi_boundary! {
        // SAFETY: NULL or a live error from this library (header contract).
        match unsafe { error.as_ref() } {
            Some(e) => e.message.as_ptr(),
            None => std::ptr::null(),
        }
    }
}

/// What sort of failure `error` is (see `wt_error_kind_t`). `WT_ERROR_OTHER` if `error`
/// is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wt_error_kind(error: *const wt_error_t) -> wt_error_kind_t {
    ffi_boundary! {
        // SAFETY: NULL or a live error from this library (header contract).
        unsafe { error.as_ref() }.map_or(wt_error_kind::WT_ERROR_OTHER, |e| e.kind)
    }
}

/// The OS error number (`errno`, e.g. `ENOENT`) behind `error`, or 0 if none. Set for
/// every `WT_ERROR_IO` error that a failed OS call caused, and for a `WT_ERROR_LIMIT`
/// when the OS refused a thread with an error number. 0 if `error` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wt_error_os_errno(error: *const wt_error_t) -> i32 {
    ffi_boundary! {
        // SAFETY: NULL or a live error from this library (header contract).
        unsafe { error.as_ref() }.map_or(0, |e| e.os_errno)
    }
}

/// Releases an error.
#[unsafe(no_mangle)]
pub extern "C" fn wt_error_free(error: *mut wt_error_t) {
    ffi_boundary! {
        // SAFETY: NULL or a pointer returned by this library and not yet freed (header contract).
        unsafe { wt_error::free(error) }
    }
}
