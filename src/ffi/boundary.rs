//! The panic boundary and pointer checks every export uses.

use std::ffi::{CStr, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::error::wt_error_t;

/// What an export returns when its body panicked.
pub(crate) trait Fallback {
    fn on_panic(message: String) -> Self;
}

impl Fallback for *mut wt_error_t {
    fn on_panic(message: String) -> Self {
        wt_error_t::raw(format!("internal error (panic in wasithreads): {message}"))
    }
}

impl Fallback for () {
    fn on_panic(_: String) -> Self {}
}

impl Fallback for bool {
    fn on_panic(_: String) -> Self {
        false
    }
}

impl<T> Fallback for *mut T
where
    T: NotError,
{
    fn on_panic(_: String) -> Self {
        std::ptr::null_mut()
    }
}

impl Fallback for *const c_char {
    fn on_panic(_: String) -> Self {
        std::ptr::null()
    }
}

/// Marker for pointer results that are not errors (NULL after a panic).
pub(crate) trait NotError {}

/// Runs an export's body, turning a panic into the return type's [`Fallback`].
macro_rules! ffi_boundary {
    ($($body:tt)*) => {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(value) => value,
            Err(payload) => $crate::ffi::boundary::Fallback::on_panic(
                $crate::exit::panic_message(&*payload),
            ),
        }
    };
}

/// `&T` from a pointer, or return an error naming the argument.
macro_rules! try_ref {
    ($ptr:ident) => {
        // SAFETY: the caller passes NULL or a valid pointer from this library (header contract).
        match unsafe { $ptr.as_ref() } {
            Some(r) => r,
            None => return $crate::ffi::error::wt_error_t::raw(concat!("`", stringify!($ptr), "` is NULL")),
        }
    };
}

/// `&mut T` from a pointer, or return an error naming the argument.
macro_rules! try_mut {
    ($ptr:ident) => {
        // SAFETY: the caller passes NULL or a valid, unaliased pointer (header contract).
        match unsafe { $ptr.as_mut() } {
            Some(r) => r,
            None => return $crate::ffi::error::wt_error_t::raw(concat!("`", stringify!($ptr), "` is NULL")),
        }
    };
}

/// A UTF-8 `&str` from a C string argument, or return an error naming it.
pub(crate) fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, String> {
    if ptr.is_null() {
        return Err(format!("`{what}` is NULL"));
    }
    // SAFETY: non-NULL, and the caller passes a NUL-terminated string (header contract).
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str().map_err(|_| format!("`{what}` is not valid UTF-8"))
}

/// `len` bytes at `bytes` as a slice; NULL is allowed only for `len` 0.
pub(crate) fn byte_arg<'a>(bytes: *const u8, len: usize, what: &str) -> Result<&'a [u8], *mut wt_error_t> {
    if len == 0 {
        Ok(&[])
    } else if bytes.is_null() {
        Err(wt_error_t::raw(format!("`{what}` is NULL")))
    } else {
        // SAFETY: non-NULL, and the caller promises `len` readable bytes (header contract).
        Ok(unsafe { std::slice::from_raw_parts(bytes, len) })
    }
}


/// A path argument: any bytes but NUL (paths need not be UTF-8).
pub(crate) fn path_arg(path: *const c_char, what: &str) -> Result<PathBuf, String> {
    if path.is_null() {
        return Err(format!("`{what}` is NULL"));
    }
    // SAFETY: non-NULL and NUL-terminated (header contract).
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

/// Frees a handle made by `Box::into_raw`: the body of every `wt_*_free`. NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or came from `Box::into_raw` for this `T`, is not yet freed and is not in
/// use by another call.
pub(crate) unsafe fn free_box<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: guaranteed by the caller (see above).
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// Calls `f` with the object behind `ptr` unless `ptr` is NULL: the body of the setters
/// that return nothing and ignore NULL.
pub(crate) fn with_live<T>(ptr: *mut T, f: impl FnOnce(&mut T)) {
    // SAFETY: NULL or a live object from this library, not used concurrently (header contract).
    if let Some(obj) = unsafe { ptr.as_mut() } {
        f(obj);
    }
}
