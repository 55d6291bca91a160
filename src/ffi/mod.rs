//! The C ABI: `wt_*` functions over the safe core. The only module with raw pointers.
//!
//! Conventions (see `include/wasithreads.h`): fallible functions return `wt_error_t *`
//! (NULL = success) and write their result to the last argument, named `*_out`, only on
//! success. Every function catches panics. `_free(NULL)` does nothing.
//!
//! Plumbing: `boundary.rs` (the panic boundary), `args.rs` (pointer and argument checks,
//! one error type for them), `handle.rs` (owned handles). One file per exported concept:
//! `error.rs`, `engine.rs`, `module.rs`, `run_config.rs`, `stdio.rs`, `callbacks.rs`,
//! `run.rs`.

#![allow(non_camel_case_types)]

#[macro_use]
mod boundary;
#[macro_use]
mod args;
mod callbacks;
mod engine;
mod error;
mod handle;
mod module;
mod run;
mod run_config;
mod stdio;

pub use callbacks::*;
pub use engine::*;
pub use error::*;
pub use module::*;
pub use run::*;
pub use run_config::*;
pub use stdio::*;

use std::ffi::c_char;

/// The library version as a static NUL-terminated string, e.g. "0.1.0".
/// Never NULL; the caller must not free it.
#[unsafe(no_mangle)]
pub extern "C" fn wt_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
