//! `wt_error_t`: why a call failed.

use std::ffi::{c_char, CString};

use super::args::c_string;
use super::handle::Handle;

/// The opaque type behind `wt_error_t`.
pub struct wt_error {
    message: CString,
}
/// Why a call failed or was misused: returned by every function that can fail (NULL
/// means success). Owned by the caller. It never changes, so any thread may read it until
/// it is freed.
///
/// Methods:
/// - `wt_error_message`: the text
/// - `wt_error_free`: releases it
///
/// Lifecycle: 1. a failing call returns it; 2. `wt_error_message`; 3. `wt_error_free`.
pub type wt_error_t = wt_error;
impl Handle for wt_error {}

impl wt_error {
    /// A new heap error for returning across the ABI.
    pub(crate) fn raw(message: impl Into<String>) -> *mut wt_error_t {
        wt_error { message: c_string(message) }.into_raw()
    }

    /// NULL on success (after `ok` stored the value); on error, an error with the whole
    /// cause chain ("a: b: c"). Out-parameters are only ever written by `ok`.
    pub(crate) fn from_result<T>(r: anyhow::Result<T>, ok: impl FnOnce(T)) -> *mut wt_error_t {
        match r {
            Ok(v) => {
                ok(v);
                std::ptr::null_mut()
            }
            Err(e) => wt_error_t::raw(format!("{e:#}")),
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

/// Releases an error.
#[unsafe(no_mangle)]
pub extern "C" fn wt_error_free(error: *mut wt_error_t) {
    ffi_boundary! {
        // SAFETY: NULL or a pointer returned by this library and not yet freed (header contract).
        unsafe { wt_error::free(error) }
    }
}
