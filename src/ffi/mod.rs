//! The C ABI: `wt_*` functions over the safe core. The only module with raw pointers.
//!
//! The conventions every export follows (errors and out-parameters, NULL, numbers,
//! ownership, threads, panics) are written once, at the top of `include/wasithreads.h`
//! (`cbindgen.toml`'s `header`) and in the README's "API conventions".
//!
//! Plumbing: `boundary.rs` (the panic boundary), `args.rs` (pointer and argument checks,
//! one error type for them), `handle.rs` (owned handles). One file per exported concept,
//! declared below in the order of a run's lifecycle, which is the order cbindgen writes
//! their functions into the header: `engine.rs` (engine config and engine), `module.rs`,
//! `run_config.rs`, `stdio.rs` and `callbacks.rs` (the rest of the run config), `run.rs`
//! (runs and how they ended), `error.rs`, `version.rs`.

#![allow(non_camel_case_types)]
// The exports take raw pointers from C and cannot be `unsafe fn`s to their callers; each
// checks its pointers (`try_ref!`, `Handle`) and the header states what they must point to.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

#[macro_use]
mod boundary;
#[macro_use]
mod args;
mod handle;

// The exported concepts in lifecycle order, the order cbindgen writes their functions in
// (the comments also keep rustfmt from sorting the `mod`s).
// Engine config and engine:
mod engine;
// modules and their serialized bytes:
mod module;
// the run config: arguments, environment, directories, limits, core dumps; stdio:
mod run_config;
mod stdio;
// callbacks and host functions:
mod callbacks;
mod func;
// runs and how they ended:
mod run;
// instances (plugins):
mod instance;
// errors and the version.
mod error;
mod version;

pub use callbacks::*;
pub use engine::*;
pub use error::*;
pub use func::*;
pub use instance::*;
pub use module::*;
pub use run::*;
pub use run_config::*;
pub use stdio::*;
pub use version::*;
