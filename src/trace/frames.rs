//! Backtraces in the terms of the module the user loaded: Wasmtime's frames of the
//! rewritten module, mapped back through the [`OffsetMap`].

use std::fmt::Write as _;

use wasmtime::FrameInfo;

use super::map::{FuncOrigin, OffsetMap};

/// One frame of a guest thread's stack, innermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The function's index in the module the user loaded; `None` for code wasithreads
    /// added (the generated function that applies data segments).
    pub func_index: Option<u32>,
    /// The function's name from the module's name section, if it has one (as it is there:
    /// mangled for Rust and C++).
    pub func_name: Option<String>,
    /// The instruction's offset in the module's bytes (what `wasm-objdump -d` shows).
    pub module_offset: Option<u32>,
    /// The instruction's offset from the start of its function body.
    pub func_offset: Option<u32>,
}

/// Wasmtime's frames (of a backtrace or a core dump), mapped back to the original module.
pub(crate) fn frames(frames: &[FrameInfo], map: &OffsetMap) -> Vec<Frame> {
    frames
        .iter()
        .map(|f| {
            let index = f.func_index();
            let at = f.func_offset().and_then(|o| u32::try_from(o).ok()).and_then(|o| map.original(index, o));
            let func_index = match map.func(index) {
                FuncOrigin::Original(i) => Some(i),
                FuncOrigin::Added => None,
            };
            Frame {
                func_index,
                func_name: f.func_name().map(String::from),
                module_offset: at.map(|a| a.module_offset),
                func_offset: at.map(|a| a.func_offset),
            }
        })
        .collect()
}

/// A Rust or C++ symbol demangled as Wasmtime 46 showed it; other names as they are.
fn demangle(name: &str) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return d.to_string();
    }
    cpp_demangle::Symbol::new(name).ok().and_then(|s| s.demangle().ok()).unwrap_or_else(|| name.to_string())
}

/// "wasm backtrace:" then one frame a line, innermost first:
/// `    0: name (module offset 0x84)`, or `<wasm function 3>` without a name. Rust and
/// C++ names are demangled.
pub(crate) fn render(frames: &[Frame]) -> String {
    let mut out = String::from("wasm backtrace:");
    for (i, f) in frames.iter().enumerate() {
        let name = match (&f.func_name, f.func_index) {
            (Some(name), _) => demangle(name),
            (None, Some(index)) => format!("<wasm function {index}>"),
            (None, None) => "<data segment initialiser added by wasithreads>".into(),
        };
        let _ = write!(out, "\n  {i:>3}: {name}");
        if let Some(off) = f.module_offset {
            let _ = write!(out, " (module offset {off:#x})");
        }
    }
    out
}
