//! Where guest code is, in the terms of the module the user loaded: the offset map the
//! rewrite leaves (`map.rs`), and backtraces mapped through it (`frames.rs`).

mod frames;
mod map;

pub use frames::Frame;
pub(crate) use frames::{frames, render};
pub(crate) use map::{Body, OffsetMap};
