//! The panic boundary every export uses: `ffi_boundary! { body }` wraps only the body, so
//! cbindgen reads the signature directly, and the return type chooses what a panic
//! becomes ([`Fallback`]).

use std::ffi::c_char;

use super::error::{wt_error_kind_t, wt_error_t};
use crate::error::ErrorKind;

/// What an export returns when its body panicked.
pub(crate) trait Fallback {
    fn on_panic(message: String) -> Self;
}

impl Fallback for *mut wt_error_t {
    fn on_panic(message: String) -> Self {
        wt_error_t::raw(ErrorKind::Other, 0, format!("internal error (panic in wasithreads): {message}"))
    }
}

impl Fallback for wt_error_kind_t {
    fn on_panic(_: String) -> Self {
        wt_error_kind_t::WT_ERROR_OTHER
    }
}

impl Fallback for i32 {
    fn on_panic(_: String) -> Self {
        0
    }
}

impl Fallback for usize {
    fn on_panic(_: String) -> Self {
        0
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

impl NotError for u8 {}

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
