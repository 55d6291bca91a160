//! A WebAssembly core dump (the tool-conventions `Coredump.md` format, as Wasmtime and
//! `wasmgdb` use it): a wasm module with a `core` section naming the process,
//! `coremodules` and `coreinstances` sections, one `corestack` section per thread, the
//! memories with their contents as active data segments, and the globals as constants.
//!
//! Unlike Wasmtime's own dump (which leaves out shared memories), this one holds the
//! run's shared memory, and the stacks of every thread of the run, in the function
//! indices and code offsets of the module the host loaded.

use wasm_encoder::{
    ConstExpr, CoreDumpInstancesSection, CoreDumpModulesSection, CoreDumpSection, CoreDumpStackSection, DataSection,
    GlobalSection, GlobalType, MemorySection, MemoryType, Module, ValType,
};

use super::Frame;

/// One thread's stack, innermost frame first.
pub(crate) struct Stack {
    pub(crate) name: String,
    pub(crate) frames: Vec<Frame>,
}

/// A memory: its type and its bytes at the time of the dump.
pub(crate) struct Memory {
    pub(crate) shared: bool,
    pub(crate) maximum_pages: Option<u64>,
    pub(crate) data: Vec<u8>,
}

/// A global's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Global {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
    /// A reference, written as null (a dump holds no objects).
    FuncRef,
    ExternRef,
}

/// Everything a dump holds. `memories` and `globals` are in the original module's index
/// order; `stacks[0]` is the thread that trapped.
pub(crate) struct Dump {
    pub(crate) process: String,
    pub(crate) module: String,
    pub(crate) memories: Vec<Memory>,
    pub(crate) globals: Vec<Global>,
    pub(crate) stacks: Vec<Stack>,
}

/// Memory bytes are written in chunks of this size with zero runs at their ends left
/// out (a memory is mostly zeroes; one segment per non-zero chunk stays far below the
/// limits on segment counts).
const CHUNK: usize = 64 * 1024;

/// The dump as bytes.
pub(crate) fn encode(dump: &Dump) -> Vec<u8> {
    let mut out = Module::new();
    out.section(&CoreDumpSection::new(dump.process.as_str()));

    let mut memories = MemorySection::new();
    let mut data = DataSection::new();
    for (index, m) in dump.memories.iter().enumerate() {
        let pages = m.data.len().div_ceil(65536) as u64;
        memories.memory(MemoryType {
            minimum: pages,
            maximum: m.maximum_pages,
            memory64: false,
            shared: m.shared,
            page_size_log2: None,
        });
        for (i, chunk) in m.data.chunks(CHUNK).enumerate() {
            let Some(start) = chunk.iter().position(|b| *b != 0) else { continue };
            let end = chunk.iter().rposition(|b| *b != 0).map_or(start, |e| e + 1);
            let offset = (i * CHUNK + start) as u32;
            data.active(index as u32, &ConstExpr::i32_const(offset as i32), chunk[start..end].iter().copied());
        }
    }
    out.section(&memories);

    let mut globals = GlobalSection::new();
    for g in &dump.globals {
        let (val_type, init) = match *g {
            Global::I32(v) => (ValType::I32, ConstExpr::i32_const(v)),
            Global::I64(v) => (ValType::I64, ConstExpr::i64_const(v)),
            Global::F32(v) => (ValType::F32, ConstExpr::f32_const(f32::from_bits(v).into())),
            Global::F64(v) => (ValType::F64, ConstExpr::f64_const(f64::from_bits(v).into())),
            Global::V128(v) => (ValType::V128, ConstExpr::v128_const(v as i128)),
            Global::FuncRef => (ValType::FUNCREF, ConstExpr::ref_null(wasm_encoder::HeapType::FUNC)),
            Global::ExternRef => (ValType::EXTERNREF, ConstExpr::ref_null(wasm_encoder::HeapType::EXTERN)),
        };
        globals.global(GlobalType { val_type, mutable: false, shared: false }, &init);
    }
    out.section(&globals);
    out.section(&data);

    let mut modules = CoreDumpModulesSection::new();
    modules.module(dump.module.as_str());
    out.section(&modules);
    let mut instances = CoreDumpInstancesSection::new();
    instances.instance(0, 0..dump.memories.len() as u32, 0..dump.globals.len() as u32);
    out.section(&instances);

    for stack in &dump.stacks {
        let mut section = CoreDumpStackSection::new(stack.name.as_str());
        // Frames in code wasithreads added (no index in the user's module) are left out.
        for f in &stack.frames {
            let Some(func) = f.func_index else { continue };
            section.frame(0, func, f.func_offset.unwrap_or(0), [], []);
        }
        out.section(&section);
    }
    out.finish()
}
