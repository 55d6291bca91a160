//! Compiling a module vs loading it from `Module::serialize` bytes (a host's disk cache),
//! for the Rust std::thread test guest. Prints medians of 7 runs each and the ratio.
//!
//! Run: `cargo bench --bench module_cache` (builds the guest with the
//! wasm32-wasip1-threads target first).

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use wasithreads::{Engine, EngineConfig, Module};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let wasm = common::rust_guest();
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let compile = median(
        (0..7)
            .map(|_| {
                let t = Instant::now();
                Module::new(&engine, wasm).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let bytes = Module::new(&engine, wasm).unwrap().serialize().unwrap();
    let load = median(
        (0..7)
            .map(|_| {
                let t = Instant::now();
                // SAFETY: the bytes were produced by `serialize` just above.
                unsafe { Module::deserialize(&engine, &bytes) }.unwrap();
                t.elapsed()
            })
            .collect(),
    );
    println!(
        "module {} KiB: compile {compile:?}, load serialized ({} KiB) {load:?}: {:.0}x faster",
        wasm.len() / 1024,
        bytes.len() / 1024,
        compile.as_secs_f64() / load.as_secs_f64()
    );
}
