//! `wt_module_t`, and `wt_bytes_t` for its serialized form.

use std::ffi::c_char;

use super::args::{byte_arg, path_arg};
use super::engine::wt_engine_t;
use super::error::wt_error_t;
use super::handle::Handle;
use crate::engine::Engine;
use crate::module::Module;

/// The opaque type behind `wt_module_t`.
pub struct wt_module {
    pub(crate) inner: Module,
}
/// A compiled module, ready to run on the engine that loaded it. Thread-safe: many host
/// threads may run it at once. Owned by the caller.
///
/// Methods:
/// - `wt_module_load`: compiles `.wasm` bytes or WAT text
/// - `wt_module_load_file`: the same from a file
/// - `wt_module_deserialize`: loads bytes from `wt_module_serialize` without compiling
/// - `wt_module_free`: releases the caller's handle
/// - `wt_module_validate`: says whether bytes would load, and if not why
/// - `wt_module_serialize`: the compiled module as bytes, to cache on disk
///
/// Lifecycle: 1. `wt_module_load`, `wt_module_load_file` or `wt_module_deserialize`;
/// 2. `wt_run` or `wt_run_start` with the engine that loaded it, any number of times, from
/// any threads; 3. `wt_module_free`, at any time: runs in progress keep the module alive.
pub type wt_module_t = wt_module;
impl Handle for wt_module {}

/// Compiles a module from `.wasm` bytes or WAT text (`len` bytes at `bytes`, which are
/// copied). Checks that the module is valid WebAssembly, that every import is one
/// wasithreads provides (WASI preview 1, `wasi::thread-spawn`, one memory) and that a
/// module importing `thread-spawn` imports a shared memory. On success writes the module
/// to `*module_out` (owned by the caller; release it with `wt_module_free`) and returns
/// NULL; on failure the error says what is wrong.
///
/// One thing a guest sees differently from Wasmtime: when its shared memory's maximum is
/// 1 to 32276 pages, loads from the 64 KiB at address 0x7E150000 (past the maximum, so
/// always out of bounds) read zeros instead of trapping while its run goes on; stores
/// there trap. That page is where busy threads are stopped (README, "How it works").
#[unsafe(no_mangle)]
pub extern "C" fn wt_module_load(
    engine: *const wt_engine_t,
    bytes: *const u8,
    len: usize,
    module_out: *mut *mut wt_module_t,
) -> *mut wt_error_t {
    ffi_boundary! { load_bytes(engine, bytes, len, module_out, Module::new) }
}

/// The shared body of the functions that make a module from a byte buffer.
fn load_bytes(
    engine: *const wt_engine_t,
    bytes: *const u8,
    len: usize,
    module_out: *mut *mut wt_module_t,
    make: impl FnOnce(&Engine, &[u8]) -> anyhow::Result<Module>,
) -> *mut wt_error_t {
    let engine = try_ref!(engine);
    let out = try_mut!(module_out);
    let bytes = try_arg!(byte_arg(bytes, len, "bytes"));
    wt_error_t::from_result(make(&engine.inner, bytes), |m| *out = wt_module { inner: m }.into_raw())
}

/// Like `wt_module_load`, reading the module (`.wasm` or `.wat`) from the file at `path`
/// (any bytes but NUL).
#[unsafe(no_mangle)]
pub extern "C" fn wt_module_load_file(
    engine: *const wt_engine_t,
    path: *const c_char,
    module_out: *mut *mut wt_module_t,
) -> *mut wt_error_t {
    ffi_boundary! {
        let engine = try_ref!(engine);
        let out = try_mut!(module_out);
        let path = try_arg!(path_arg(path, "path"));
        wt_error_t::from_result(Module::from_file(&engine.inner, &path), |m| *out = wt_module { inner: m }.into_raw())
    }
}

/// Loads a module from `len` bytes at `bytes` made by `wt_module_serialize` with the same
/// library version and engine settings (anything else is refused with an error), skipping
/// compilation. On success writes the module to `*module_out` (owned by the caller;
/// release it with `wt_module_free`) and returns NULL.
///
/// SECURITY: the bytes contain machine code that is checked for format and version but
/// not for integrity. Only pass bytes this library produced and nobody else could change
/// (e.g. a cache file only the host can write). For untrusted input use `wt_module_load`.
#[unsafe(no_mangle)]
pub extern "C" fn wt_module_deserialize(
    engine: *const wt_engine_t,
    bytes: *const u8,
    len: usize,
    module_out: *mut *mut wt_module_t,
) -> *mut wt_error_t {
    ffi_boundary! {
        load_bytes(engine, bytes, len, module_out, |engine, bytes| {
            // SAFETY: the header requires bytes from `wt_module_serialize` (see SECURITY above).
            unsafe { Module::deserialize(engine, bytes) }
        })
    }
}

/// Releases the caller's module handle; runs in progress keep the module alive.
#[unsafe(no_mangle)]
pub extern "C" fn wt_module_free(module: *mut wt_module_t) {
    ffi_boundary! {
        // SAFETY: NULL or from `wt_module_load`, not yet freed (header contract).
        unsafe { wt_module::free(module) }
    }
}

/// Checks `len` bytes at `bytes` (`.wasm` or WAT) the way `wt_module_load` does, and
/// says what is wrong, e.g. "the module imports wasi::thread-spawn but does not import a
/// shared memory". Returns NULL if the module would load. It compiles the module to be
/// sure, so it costs as much as loading.
#[unsafe(no_mangle)]
pub extern "C" fn wt_module_validate(engine: *const wt_engine_t, bytes: *const u8, len: usize) -> *mut wt_error_t {
    ffi_boundary! {
        let engine = try_ref!(engine);
        let bytes = try_arg!(byte_arg(bytes, len, "bytes"));
        wt_error_t::from_result(Module::validate(&engine.inner, bytes), |()| {})
    }
}

/// Serializes the compiled module (machine code included) so that a host can cache it on
/// disk and skip compilation next time with `wt_module_deserialize`. On success fills
/// `*bytes_out` (owned by the caller: release it with `wt_bytes_free`) and returns NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wt_module_serialize(module: *const wt_module_t, bytes_out: *mut wt_bytes_t) -> *mut wt_error_t {
    ffi_boundary! {
        let module = try_ref!(module);
        let out = try_mut!(bytes_out);
        wt_error_t::from_result(module.inner.serialize(), |bytes| {
            let boxed = bytes.into_boxed_slice();
            let len = boxed.len();
            *out = wt_bytes_t { data: Box::into_raw(boxed).cast(), len };
        })
    }
}

/// The struct behind `wt_bytes_t`.
#[repr(C)]
#[derive(Debug)]
pub struct wt_bytes {
    pub data: *mut u8,
    pub len: usize,
}
/// `len` bytes at `data`, owned by the caller but allocated by the library (e.g. a
/// serialized module from `wt_module_serialize`): release them with `wt_bytes_free`, never
/// with `free`.
pub type wt_bytes_t = wt_bytes;

/// Releases bytes made by the library and sets them to NULL/0, so a second call does
/// nothing.
#[unsafe(no_mangle)]
pub extern "C" fn wt_bytes_free(bytes: *mut wt_bytes_t) {
    ffi_boundary! {
        // SAFETY: NULL or a `wt_bytes_t` filled by this library (header contract).
        let Some(b) = (unsafe { bytes.as_mut() }) else { return };
        if !b.data.is_null() {
            let slice = std::ptr::slice_from_raw_parts_mut(b.data, b.len);
            // SAFETY: made by `Box::into_raw` of a boxed slice of exactly this length.
            drop(unsafe { Box::from_raw(slice) });
        }
        *b = wt_bytes_t { data: std::ptr::null_mut(), len: 0 };
    }
}
