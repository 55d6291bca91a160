//! `wt_module_t`.

use super::engine::wt_engine_t;
use super::error::wt_error_t;
use crate::module::Module;

/// A compiled module. Thread-safe: it may be run by many host threads at once.
/// Release with `wt_module_free`.
pub struct wt_module {
    pub(crate) inner: Module,
}
/// See `struct wt_module`.
pub type wt_module_t = wt_module;

/// Compiles a module from `.wasm` bytes or WAT text (`len` bytes at `bytes`, which are
/// copied; the caller keeps ownership). Checks that the module is valid WebAssembly, that
/// every import is one wasithreads provides (WASI preview 1, `wasi::thread-spawn`, one
/// memory) and that a module importing `thread-spawn` imports a shared memory.
/// On success writes the module to `*module_out` (owned by the caller; release with
/// `wt_module_free`) and returns NULL; on failure returns an error saying what is wrong
/// and leaves `*module_out` untouched.
#[unsafe(no_mangle)]
pub extern "C" fn wt_module_load(
    engine: *mut wt_engine_t,
    bytes: *const u8,
    len: usize,
    module_out: *mut *mut wt_module_t,
) -> *mut wt_error_t {
    ffi_boundary! {
        let engine = try_ref!(engine);
        let out = try_mut!(module_out);
        let bytes: &[u8] = if len == 0 {
            &[]
        } else if bytes.is_null() {
            return wt_error_t::raw("`bytes` is NULL");
        } else {
            // SAFETY: non-NULL, and the caller promises `len` readable bytes (header contract).
            unsafe { std::slice::from_raw_parts(bytes, len) }
        };
        wt_error_t::from_result(Module::new(&engine.inner, bytes), |m| {
            *out = Box::into_raw(Box::new(wt_module { inner: m }));
        })
    }
}

/// Releases the caller's module handle; runs in progress keep the module alive.
/// NULL is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn wt_module_free(module: *mut wt_module_t) {
    ffi_boundary! {
        if !module.is_null() {
            // SAFETY: from `wt_module_load`, not yet freed (header contract).
            drop(unsafe { Box::from_raw(module) });
        }
    }
}
