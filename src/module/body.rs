//! Function bodies, for the rewrite (`rewrite.rs`): what each one calls and waits on
//! (the scan), and each one rewritten (interruption points, waits and notifies turned
//! into calls, indices shifted) with its piece of the offset map. Bodies are independent,
//! so both passes run in parallel on the rayon pool that compiles the module next; the
//! results come back in body order.

use std::collections::BTreeMap;

use rayon::prelude::*;
use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::Instruction;
use wasmparser::{FunctionBody, MemArg, Operator};

use super::points::Calls;
use crate::host::{AtomicImport, AtomicOp};
use crate::trace::Body;

/// The import an instruction is rewritten to, if it is a wait or notify on `shared`.
fn import_for(op: &Operator<'_>, shared: u32) -> Option<AtomicImport> {
    let (op, memarg): (AtomicOp, &MemArg) = match op {
        Operator::MemoryAtomicWait32 { memarg } => (AtomicOp::Wait32, memarg),
        Operator::MemoryAtomicWait64 { memarg } => (AtomicOp::Wait64, memarg),
        Operator::MemoryAtomicNotify { memarg } => (AtomicOp::Notify, memarg),
        _ => return None,
    };
    (memarg.memory == shared).then_some(AtomicImport { op, offset: memarg.offset })
}

/// What the scan learns of one body: its calls, and the waits and notifies on the shared
/// memory (index `shared`, `u32::MAX` for none) it contains.
pub(super) fn scan(
    bodies: &[FunctionBody<'_>],
    func_imports: u32,
    shared: u32,
) -> wasmparser::Result<Vec<(Calls, Vec<AtomicImport>)>> {
    bodies
        .par_iter()
        .map(|body| {
            let range = body.range();
            let mut calls = Calls { size: (range.end - range.start) as u32, ..Calls::default() };
            let mut atomics = Vec::new();
            let mut ops = body.get_operators_reader()?;
            while !ops.eof() {
                let op = ops.read()?;
                match op {
                    Operator::Call { function_index } | Operator::ReturnCall { function_index } => {
                        if let Some(defined) = function_index.checked_sub(func_imports) {
                            calls.direct.push(defined);
                        }
                    }
                    Operator::CallIndirect { .. }
                    | Operator::ReturnCallIndirect { .. }
                    | Operator::CallRef { .. }
                    | Operator::ReturnCallRef { .. } => calls.indirect = true,
                    _ => {}
                }
                if let Some(imp) = import_for(&op, shared) {
                    atomics.push(imp);
                }
            }
            Ok((calls, atomics))
        })
        .collect()
}

/// Where the indices of the original module go in the rewritten one.
#[derive(Clone, Copy)]
pub(super) struct Indices {
    pub func_imports: u32,
    /// Function imports the rewrite adds after the module's own.
    pub added_func_imports: u32,
    pub memory_imports: u32,
    /// The shared memory's original index, when the module *defines* it (it becomes an
    /// import, the first after the module's own).
    pub converted_memory: Option<u32>,
    /// Memory imports the rewrite adds: the converted memory, the interrupt page.
    pub added_memory_imports: u32,
}

impl Indices {
    pub(super) fn function(&self, func: u32) -> u32 {
        if func >= self.func_imports {
            func + self.added_func_imports
        } else {
            func
        }
    }

    /// The module's imported memories keep their indices; after them come the added
    /// imports (the converted shared memory, then the interrupt page), then the defined
    /// memories that remain, in their order.
    pub(super) fn memory(&self, memory: u32) -> u32 {
        if memory < self.memory_imports {
            return memory;
        }
        match self.converted_memory {
            Some(index) if memory == index => self.memory_imports,
            Some(index) if memory > index => memory + self.added_memory_imports - 1,
            _ => memory + self.added_memory_imports,
        }
    }
}

/// What rewriting a body needs, shared by the threads that do it.
pub(super) struct Context<'a> {
    pub indices: Indices,
    /// The function index of the import for each wait or notify.
    pub atomics: &'a BTreeMap<AtomicImport, u32>,
    /// The shared memory's original index (`u32::MAX` for none).
    pub shared: u32,
    /// Interruption points load from this memory (rewritten index) at this address.
    pub point_memory: u32,
    pub point_address: i32,
    /// Per body: whether its entry gets an interruption point.
    pub entry_points: &'a [bool],
}

/// Every body rewritten, with its map, in order.
pub(super) fn rewrite(
    cx: &Context<'_>,
    bodies: Vec<FunctionBody<'_>>,
) -> Result<Vec<(wasm_encoder::Function, Body)>, reencode::Error> {
    bodies.into_par_iter().enumerate().map(|(i, body)| Rewriter { cx }.body(i, body)).collect()
}

struct Rewriter<'a> {
    cx: &'a Context<'a>,
}

impl Rewriter<'_> {
    fn body(&mut self, i: usize, func: FunctionBody<'_>) -> Result<(wasm_encoder::Function, Body), reencode::Error> {
        let mut f = reencode::utils::new_function_with_parsed_locals(self, &func)?;
        let start = func.range().start;
        let mut map = Body::new(start as u32);
        let mut reader = func.get_operators_reader()?;
        // Offsets within the body, new and original, for the offset map.
        let at = |f: &wasm_encoder::Function, reader: &wasmparser::OperatorsReader<'_>| {
            (f.byte_len() as u32, (reader.original_position() - start) as u32)
        };
        let (_, first) = at(&f, &reader);
        if self.cx.entry_points.get(i).copied().unwrap_or(true) {
            self.interruption_point(&mut f, &mut map, first);
        }
        while !reader.eof() {
            let (new, orig) = at(&f, &reader);
            map.at(new, orig);
            let op = reader.read()?;
            let is_loop = matches!(op, Operator::Loop { .. });
            f.instruction(&self.instruction(op)?);
            if is_loop {
                self.interruption_point(&mut f, &mut map, orig);
            }
        }
        Ok((f, map))
    }

    /// The interruption point: a dead load from the interrupt page (in the shared
    /// memory's reserved page, or the page the module imports). Atomic, because Cranelift
    /// would merge a plain load with an earlier load of the same address when nothing is
    /// stored in between, and then drop it: with the point at a loop head, the loop
    /// would have none. The earlier load could be another point, or the guest's own load
    /// of the reserved page (which it may read) just before a loop that stores nothing.
    /// Cranelift merges no atomic load; on x86-64 and aarch64 a 32-bit one is an
    /// ordinary load instruction. (Its alias analysis treats it as a fence, which costs
    /// nothing measurable: instruction counts of zstd and xz are the same with plain
    /// loads of distinct words.)
    ///
    /// Each of its instructions maps to `orig` (the function's first instruction, or the
    /// `loop`), where a thread stopped there is reported to be.
    fn interruption_point(&self, f: &mut wasm_encoder::Function, map: &mut Body, orig: u32) {
        let memarg = wasm_encoder::MemArg { offset: 0, align: 2, memory_index: self.cx.point_memory };
        for ins in [Instruction::I32Const(self.cx.point_address), Instruction::I32AtomicLoad(memarg), Instruction::Drop]
        {
            map.at(f.byte_len() as u32, orig);
            f.instruction(&ins);
        }
    }
}

impl Reencode for Rewriter<'_> {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error> {
        Ok(self.cx.indices.function(func))
    }

    fn memory_index(&mut self, memory: u32) -> Result<u32, reencode::Error> {
        Ok(self.cx.indices.memory(memory))
    }

    fn instruction<'a>(&mut self, op: Operator<'a>) -> Result<Instruction<'a>, reencode::Error> {
        match import_for(&op, self.cx.shared) {
            Some(imp) => Ok(Instruction::Call(self.cx.atomics[&imp])),
            None => reencode::utils::instruction(self, op),
        }
    }
}
