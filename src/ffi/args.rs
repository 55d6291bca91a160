//! Checking and converting C arguments. Every conversion fails with one type,
//! [`ArgError`], whose message names the argument; `try_arg!` returns it to C as a
//! `wt_error_t *` of its kind (`Misuse`, or `Io` when a host file or descriptor failed).

use std::ffi::{c_char, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::error::wt_error_t;
use crate::error::ErrorKind;

/// A bad argument (NULL, not UTF-8, out of range, …: `Misuse`) or one the host's OS
/// refused (a file that cannot be created, a descriptor that cannot be duplicated: `Io`);
/// the message says which and why.
#[derive(Debug)]
pub(crate) struct ArgError {
    message: String,
    kind: ErrorKind,
    os_errno: i32,
}

impl ArgError {
    /// A misuse: the argument is wrong whatever the OS says.
    pub(crate) fn misuse(message: impl Into<String>) -> ArgError {
        ArgError { message: message.into(), kind: ErrorKind::Misuse, os_errno: 0 }
    }

    /// `` `what` is NULL ``.
    pub(crate) fn null(what: &str) -> ArgError {
        ArgError::misuse(format!("`{what}` is NULL"))
    }

    /// An OS call on the argument failed with `error`: `message: error`.
    pub(crate) fn io(message: impl std::fmt::Display, error: &std::io::Error) -> ArgError {
        ArgError {
            message: format!("{message}: {error}"),
            kind: ErrorKind::Io,
            os_errno: error.raw_os_error().unwrap_or(0),
        }
    }

    /// The error to return across the ABI.
    pub(crate) fn into_raw(self) -> *mut wt_error_t {
        wt_error_t::raw(self.kind, self.os_errno, self.message)
    }
}

/// The value of a `Result<T, ArgError>`, or return its error from the export.
macro_rules! try_arg {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(e) => return $crate::ffi::args::ArgError::into_raw(e),
        }
    };
}

/// `&T` from a pointer argument, or return an error naming it.
macro_rules! try_ref {
    ($ptr:ident) => {
        // SAFETY: the caller passes NULL or a valid pointer from this library (header contract).
        match unsafe { $ptr.as_ref() } {
            Some(r) => r,
            None => return $crate::ffi::args::ArgError::null(stringify!($ptr)).into_raw(),
        }
    };
}

/// `&mut T` from a pointer argument, or return an error naming it.
macro_rules! try_mut {
    ($ptr:ident) => {
        // SAFETY: the caller passes NULL or a valid, unaliased pointer (header contract).
        match unsafe { $ptr.as_mut() } {
            Some(r) => r,
            None => return $crate::ffi::args::ArgError::null(stringify!($ptr)).into_raw(),
        }
    };
}

/// A UTF-8 `&str` from a C string argument.
pub(crate) fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, ArgError> {
    if ptr.is_null() {
        return Err(ArgError::null(what));
    }
    // SAFETY: non-NULL, and the caller passes a NUL-terminated string (header contract).
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str().map_err(|_| ArgError::misuse(format!("`{what}` is not valid UTF-8")))
}

/// `len` bytes at `bytes` as a slice; NULL is allowed only for `len` 0.
pub(crate) fn byte_arg<'a>(bytes: *const u8, len: usize, what: &str) -> Result<&'a [u8], ArgError> {
    if len == 0 {
        Ok(&[])
    } else if bytes.is_null() {
        Err(ArgError::null(what))
    } else {
        // SAFETY: non-NULL, and the caller promises `len` readable bytes (header contract).
        Ok(unsafe { std::slice::from_raw_parts(bytes, len) })
    }
}

/// A path argument: any bytes but NUL (paths need not be UTF-8).
pub(crate) fn path_arg(path: *const c_char, what: &str) -> Result<PathBuf, ArgError> {
    if path.is_null() {
        return Err(ArgError::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated (header contract).
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

/// A C string of `text` for the host, with any NUL bytes (which C cannot see past)
/// removed: the library never hands C a truncated message.
pub(crate) fn c_string(text: impl Into<String>) -> CString {
    let mut text = text.into();
    text.retain(|c| c != '\0');
    CString::new(text).unwrap_or_default()
}

/// Calls `f` with the object behind `ptr` unless `ptr` is NULL: the body of the setters
/// that return nothing and ignore NULL.
pub(crate) fn with_live<T>(ptr: *mut T, f: impl FnOnce(&mut T)) {
    // SAFETY: NULL or a live object from this library, not used concurrently (header contract).
    if let Some(obj) = unsafe { ptr.as_mut() } {
        f(obj);
    }
}
