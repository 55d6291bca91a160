//! A WebAssembly core dump (the tool-conventions `Coredump.md` format, as Wasmtime and
//! `wasmgdb` use it): a wasm module with a `core` section naming the process,
//! `coremodules` and `coreinstances` sections, one `corestack` section per thread, the
//! memories with their contents as active data segments, and the globals as constants.
//!
//! Unlike Wasmtime's own dump (which leaves out shared memories), this one holds the
//! run's shared memory, and the stacks of every thread of the run, in the function
//! indices and code offsets of the module the host loaded. Memory contents are streamed
//! from where they are to the writer: a dump needs no second copy of a memory.

use std::io::{self, Write};

use wasm_encoder::{
    ConstExpr, CoreDumpInstancesSection, CoreDumpModulesSection, CoreDumpSection, CoreDumpStackSection, Encode,
    GlobalSection, GlobalType, MemorySection, MemoryType, Module, ValType,
};

use crate::trace::Frame;

/// One thread's stack, innermost frame first.
pub(crate) struct Stack {
    pub(crate) name: String,
    pub(crate) frames: Vec<Frame>,
}

/// A memory: its type, and a way to read its bytes.
pub(crate) struct Memory<'a> {
    pub(crate) shared: bool,
    pub(crate) memory64: bool,
    pub(crate) maximum_pages: Option<u64>,
    /// Its size in bytes.
    pub(crate) len: usize,
    /// Fills the buffer with the memory's bytes from the offset (always in bounds).
    pub(crate) read: &'a dyn Fn(usize, &mut [u8]),
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
pub(crate) struct Dump<'a> {
    pub(crate) process: String,
    pub(crate) module: String,
    pub(crate) memories: Vec<Memory<'a>>,
    pub(crate) globals: Vec<Global>,
    pub(crate) stacks: Vec<Stack>,
}

/// wasmparser's limit on data segments in a module.
const MAX_SEGMENTS: usize = 100_000;

/// Writes the dump: the small sections first, then the data section, streamed. Each
/// memory is read twice (once to find its non-zero parts and so the section's size, which
/// precedes it, once to write them) rather than copied.
pub(crate) fn write(dump: &Dump<'_>, out: &mut impl Write) -> io::Result<()> {
    out.write_all(&small_sections(dump))?;
    let segments = segments(&dump.memories);
    let headers: Vec<Vec<u8>> = segments.iter().map(|s| s.header(&dump.memories[s.memory as usize])).collect();
    let mut content = Vec::new();
    (segments.len() as u32).encode(&mut content);
    let size = content.len() + segments.iter().zip(&headers).map(|(s, h)| h.len() + s.len).sum::<usize>();
    let mut head = vec![wasm_encoder::SectionId::Data as u8];
    (size as u32).encode(&mut head);
    out.write_all(&head)?;
    out.write_all(&content)?;
    let mut buf = vec![0u8; 1 << 16];
    for (s, h) in segments.iter().zip(&headers) {
        out.write_all(h)?;
        let read = dump.memories[s.memory as usize].read;
        let mut at = s.start;
        while at < s.start + s.len {
            let n = buf.len().min(s.start + s.len - at);
            read(at, &mut buf[..n]);
            out.write_all(&buf[..n])?;
            at += n;
        }
    }
    Ok(())
}

/// One active data segment: the bytes `start..start + len` of memory `memory`.
struct Segment {
    memory: u32,
    start: usize,
    len: usize,
}

impl Segment {
    /// The segment's encoding up to its bytes: flags, memory, offset, length.
    fn header(&self, m: &Memory<'_>) -> Vec<u8> {
        let mut h = Vec::new();
        if self.memory == 0 {
            h.push(0x00);
        } else {
            h.push(0x02);
            self.memory.encode(&mut h);
        }
        if m.memory64 {
            ConstExpr::i64_const(self.start as i64).encode(&mut h);
        } else {
            ConstExpr::i32_const(self.start as u32 as i32).encode(&mut h);
        }
        (self.len as u32).encode(&mut h);
        h
    }
}

/// The non-zero parts of every memory: one segment per chunk, zero runs at its ends left
/// out (memories are mostly zeroes). Chunks are large enough that the segments stay
/// within wasmparser's limit however large the memories are.
fn segments(memories: &[Memory<'_>]) -> Vec<Segment> {
    let total: usize = memories.iter().map(|m| m.len).sum();
    let chunk = total.div_ceil(MAX_SEGMENTS / 2).next_multiple_of(1 << 16).max(1 << 16);
    let mut buf = vec![0u8; chunk];
    let mut out = Vec::new();
    for (index, m) in memories.iter().enumerate() {
        let mut at = 0;
        while at < m.len {
            let n = chunk.min(m.len - at);
            (m.read)(at, &mut buf[..n]);
            if let (Some(first), Some(last)) =
                (buf[..n].iter().position(|b| *b != 0), buf[..n].iter().rposition(|b| *b != 0))
            {
                out.push(Segment { memory: index as u32, start: at + first, len: last + 1 - first });
            }
            at += n;
        }
    }
    out
}

/// The header and every section but the data section.
fn small_sections(dump: &Dump<'_>) -> Vec<u8> {
    let mut out = Module::new();
    out.section(&CoreDumpSection::new(dump.process.as_str()));

    let mut memories = MemorySection::new();
    for m in &dump.memories {
        let minimum = m.len.div_ceil(65536) as u64;
        memories.memory(MemoryType {
            minimum,
            // A shared memory must have a maximum.
            maximum: m.maximum_pages.or(m.shared.then_some(minimum)),
            memory64: m.memory64,
            shared: m.shared,
            page_size_log2: None,
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dump_of(memories: Vec<Memory<'_>>) -> Vec<u8> {
        let dump =
            Dump { process: "p".into(), module: "m".into(), memories, globals: vec![Global::I32(7)], stacks: vec![] };
        let mut out = Vec::new();
        write(&dump, &mut out).unwrap();
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all()).validate_all(&out).unwrap();
        out
    }

    /// (memory, offset, bytes) of each data segment.
    fn data(dump: &[u8]) -> Vec<(u32, u64, Vec<u8>)> {
        let mut out = Vec::new();
        for p in wasmparser::Parser::new(0).parse_all(dump) {
            if let wasmparser::Payload::DataSection(r) = p.unwrap() {
                for d in r {
                    let d = d.unwrap();
                    let wasmparser::DataKind::Active { memory_index, offset_expr } = d.kind else { panic!() };
                    let offset = match offset_expr.get_operators_reader().read().unwrap() {
                        wasmparser::Operator::I32Const { value } => u64::from(value as u32),
                        wasmparser::Operator::I64Const { value } => value as u64,
                        op => panic!("{op:?}"),
                    };
                    out.push((memory_index, offset, d.data.to_vec()));
                }
            }
        }
        out
    }

    #[test]
    fn memories_are_streamed_as_their_non_zero_parts() {
        let mut a = vec![0u8; 3 << 16];
        a[5] = 1;
        a[9] = 2;
        a[(2 << 16) + 1] = 3;
        let b = vec![0u8; 1 << 16];
        let (ra, rb) = (
            |o: usize, buf: &mut [u8]| buf.copy_from_slice(&a[o..o + buf.len()]),
            |o: usize, buf: &mut [u8]| buf.copy_from_slice(&b[o..o + buf.len()]),
        );
        let m = |shared, len, read| Memory { shared, memory64: false, maximum_pages: None, len, read };
        let dump = dump_of(vec![m(true, a.len(), &ra), m(false, b.len(), &rb)]);
        assert_eq!(data(&dump), [(0, 5, vec![1, 0, 0, 0, 2]), (0, (2 << 16) + 1, vec![3])]);
    }

    #[test]
    fn a_64_bit_memory_gets_64_bit_offsets() {
        let len = 1usize << 16;
        let read = |o: usize, buf: &mut [u8]| {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = u8::from(o + i == 0x10);
            }
        };
        let dump = dump_of(vec![Memory { shared: false, memory64: true, maximum_pages: None, len, read: &read }]);
        assert_eq!(data(&dump), [(0, 0x10, vec![1])]);
    }
}
