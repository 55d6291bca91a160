//! Where guest code is, in the terms of the module the user loaded: the offset map the
//! rewrite leaves (`map.rs`), backtraces mapped through it (`frames.rs`), core dumps in
//! those terms (`coredump.rs`).

pub(crate) mod coredump;
mod frames;
mod map;

pub use frames::Frame;
pub(crate) use frames::{frames, render};
pub(crate) use map::{Body, OffsetMap};
