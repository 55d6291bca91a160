//! `wt_version`: which library this is.

use std::ffi::c_char;

/// The library version as a static NUL-terminated string, e.g. "0.1.0"; `WT_VERSION` is
/// the header's. Never NULL; the caller must not free it.
#[unsafe(no_mangle)]
pub extern "C" fn wt_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
