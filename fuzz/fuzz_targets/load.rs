//! `wt_module_load` on arbitrary bytes, through the C ABI: it returns a module or an error
//! with a message, never crashes.
#![no_main]

use std::ptr::null_mut;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wasithreads::ffi::*;

/// The engine, shared by all inputs (as a plain address: engines are thread-safe).
fn engine() -> *mut wt_engine_t {
    static ENGINE: OnceLock<usize> = OnceLock::new();
    *ENGINE.get_or_init(|| {
        let mut e = null_mut();
        assert!(wt_engine_new(std::ptr::null(), &mut e).is_null());
        e as usize
    }) as *mut wt_engine_t
}

fuzz_target!(|data: &[u8]| {
    let mut module = null_mut();
    let err = wt_module_load(engine(), data.as_ptr(), data.len(), &mut module);
    if err.is_null() {
        assert!(!module.is_null());
        wt_module_free(module);
    } else {
        assert!(module.is_null(), "out-param untouched on failure");
        assert!(!wt_error_message(err).is_null());
        wt_error_free(err);
    }
});
