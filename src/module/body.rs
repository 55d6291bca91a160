//! Function bodies, for the rewrite (`rewrite.rs`): what each one calls and waits on
//! (the scan), and each one rewritten (interruption points, waits and notifies turned
//! into calls, indices shifted) with its piece of the offset map. Bodies are independent,
//! so both passes run in parallel on the load's rayon pool (`load_pool` in `mod.rs`),
//! which compiles the module next; the results come back in body order.

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
    /// Functions the rewrite adds after the module's imports, before its own functions:
    /// its imports, and the helper of compact interruption points.
    pub added_funcs: u32,
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
            func + self.added_funcs
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

/// The largest function body Wasmtime accepts, in bytes (wasmparser's
/// `MAX_WASM_FUNCTION_SIZE`, which it does not export).
pub(super) const MAX_BODY: usize = 7_654_321;

/// A function body too big for Wasmtime once it has its interruption points. With points
/// inline, the rewrite tries again with the compact ones (`compact` is `None` until it
/// did: the module needs the helper function for them, see `rewrite.rs`).
#[derive(Debug)]
pub(crate) struct TooBig {
    /// The function's index in the original module.
    pub func: u32,
    /// Its body's place in the original module's bytes, and its size.
    pub offset: usize,
    pub size: usize,
    /// Its size with inline points, and with compact ones.
    pub inline: usize,
    pub compact: Option<usize>,
}

impl std::fmt::Display for TooBig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "function {} (its body of {} bytes at offset {:#x} of the module) is too big for the interruption points \
             wasithreads adds at its loop heads: with them it would be {} bytes, above the {MAX_BODY} bytes Wasmtime \
             accepts for one function; split it into smaller functions",
            self.func,
            self.size,
            self.offset,
            self.compact.unwrap_or(self.inline)
        )
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
    /// The function index of the helper whose call is a compact interruption point, when
    /// the module has it (`rewrite.rs`).
    pub helper: Option<u32>,
}

/// Every body rewritten, with its map, in order.
pub(super) fn rewrite(
    cx: &Context<'_>,
    bodies: Vec<FunctionBody<'_>>,
) -> Result<Vec<(wasm_encoder::Function, Body)>, reencode::Error<TooBig>> {
    bodies.into_par_iter().enumerate().map(|(i, body)| Rewriter { cx }.body(i, body)).collect()
}

struct Rewriter<'a> {
    cx: &'a Context<'a>,
}

/// How a body's interruption points are encoded.
enum Points {
    /// Each a dead atomic load of the interrupt page, at every loop head.
    Inline,
    /// Each a call of the helper (function index), which does that load, at the head of
    /// each loop that is a branch target (by the loop's number in the body), so that a
    /// body near Wasmtime's size limit stays under it: a call is 2 or 3 bytes where the
    /// inline point is 9 or more, and a loop nothing branches to runs once.
    Compact(u32, Vec<bool>),
}

impl Rewriter<'_> {
    /// The body rewritten with inline points, or with compact ones if it would be too
    /// big for Wasmtime with inline ones.
    fn body(
        &mut self,
        i: usize,
        func: FunctionBody<'_>,
    ) -> Result<(wasm_encoder::Function, Body), reencode::Error<TooBig>> {
        let (f, map) = self.encode(i, &func, &Points::Inline)?;
        if f.byte_len() <= MAX_BODY {
            return Ok((f, map));
        }
        let range = func.range();
        let mut too_big = TooBig {
            func: self.cx.indices.func_imports + i as u32,
            offset: range.start,
            size: range.end - range.start,
            inline: f.byte_len(),
            compact: None,
        };
        let Some(helper) = self.cx.helper else { return Err(reencode::Error::UserError(too_big)) };
        let (f, map) = self.encode(i, &func, &Points::Compact(helper, branch_targets(&func)?))?;
        if f.byte_len() <= MAX_BODY {
            return Ok((f, map));
        }
        too_big.compact = Some(f.byte_len());
        Err(reencode::Error::UserError(too_big))
    }

    fn encode(
        &mut self,
        i: usize,
        func: &FunctionBody<'_>,
        points: &Points,
    ) -> Result<(wasm_encoder::Function, Body), reencode::Error<TooBig>> {
        let mut f = reencode::utils::new_function_with_parsed_locals(self, func)?;
        let start = func.range().start;
        let mut map = Body::new(start as u32);
        let mut reader = func.get_operators_reader()?;
        // Offsets within the body, new and original, for the offset map.
        let at = |f: &wasm_encoder::Function, reader: &wasmparser::OperatorsReader<'_>| {
            (f.byte_len() as u32, (reader.original_position() - start) as u32)
        };
        let (_, first) = at(&f, &reader);
        if self.cx.entry_points.get(i).copied().unwrap_or(true) {
            self.interruption_point(&mut f, &mut map, first, points);
        }
        let mut loops = 0;
        while !reader.eof() {
            let (new, orig) = at(&f, &reader);
            map.at(new, orig);
            let op = reader.read()?;
            let is_loop = matches!(op, Operator::Loop { .. });
            f.instruction(&self.instruction(op)?);
            if is_loop {
                let needed = match points {
                    Points::Inline => true,
                    Points::Compact(_, targets) => targets.get(loops).copied().unwrap_or(true),
                };
                loops += 1;
                if needed {
                    self.interruption_point(&mut f, &mut map, orig, points);
                }
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
    ///
    /// A compact point is a call of the helper, which does the same load (`rewrite.rs`);
    /// a thread stopped in the helper is reported where it was called.
    fn interruption_point(&self, f: &mut wasm_encoder::Function, map: &mut Body, orig: u32, points: &Points) {
        if let Points::Compact(helper, _) = points {
            map.at(f.byte_len() as u32, orig);
            f.instruction(&Instruction::Call(*helper));
            return;
        }
        for ins in point(self.cx.point_memory, self.cx.point_address) {
            map.at(f.byte_len() as u32, orig);
            f.instruction(&ins);
        }
    }
}

/// The instructions of an inline interruption point (see `Rewriter::interruption_point`),
/// loading from `memory` at `address`.
pub(super) fn point(memory: u32, address: i32) -> [Instruction<'static>; 3] {
    let memarg = wasm_encoder::MemArg { offset: 0, align: 2, memory_index: memory };
    [Instruction::I32Const(address), Instruction::I32AtomicLoad(memarg), Instruction::Drop]
}

/// For each `loop` of the body, in order: whether anything branches to it (a branch
/// instruction naming its label, a `try_table` catch or a stack-switching handler
/// targeting it). Only such a loop can run its body more than once.
fn branch_targets(func: &FunctionBody<'_>) -> wasmparser::Result<Vec<bool>> {
    // The open blocks, innermost last: the loop's number, or `None` for other blocks.
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut targets = Vec::new();
    let mut reader = func.get_operators_reader()?;
    let mark = |open: &[Option<usize>], targets: &mut Vec<bool>, depth: u32| {
        if let Some(&Some(l)) = open.len().checked_sub(1 + depth as usize).and_then(|i| open.get(i)) {
            targets[l] = true;
        }
    };
    while !reader.eof() {
        match reader.read()? {
            Operator::Loop { .. } => {
                open.push(Some(targets.len()));
                targets.push(false);
            }
            Operator::Block { .. } | Operator::If { .. } | Operator::Try { .. } => open.push(None),
            Operator::TryTable { try_table } => {
                // The catch labels count from outside the `try_table`.
                for catch in &try_table.catches {
                    let label = match *catch {
                        wasmparser::Catch::One { label, .. }
                        | wasmparser::Catch::OneRef { label, .. }
                        | wasmparser::Catch::All { label }
                        | wasmparser::Catch::AllRef { label } => label,
                    };
                    mark(&open, &mut targets, label);
                }
                open.push(None);
            }
            Operator::End | Operator::Delegate { .. } => {
                open.pop();
            }
            Operator::Br { relative_depth }
            | Operator::BrIf { relative_depth }
            | Operator::BrOnNull { relative_depth }
            | Operator::BrOnNonNull { relative_depth }
            | Operator::BrOnCast { relative_depth, .. }
            | Operator::BrOnCastFail { relative_depth, .. }
            | Operator::BrOnCastDescEq { relative_depth, .. }
            | Operator::BrOnCastDescEqFail { relative_depth, .. } => mark(&open, &mut targets, relative_depth),
            Operator::BrTable { targets: table } => {
                mark(&open, &mut targets, table.default());
                for depth in table.targets() {
                    mark(&open, &mut targets, depth?);
                }
            }
            Operator::Resume { resume_table, .. }
            | Operator::ResumeThrow { resume_table, .. }
            | Operator::ResumeThrowRef { resume_table, .. } => {
                for handle in &resume_table.handlers {
                    if let wasmparser::Handle::OnLabel { label, .. } = *handle {
                        mark(&open, &mut targets, label);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(targets)
}

impl Reencode for Rewriter<'_> {
    type Error = TooBig;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<TooBig>> {
        Ok(self.cx.indices.function(func))
    }

    fn memory_index(&mut self, memory: u32) -> Result<u32, reencode::Error<TooBig>> {
        Ok(self.cx.indices.memory(memory))
    }

    fn instruction<'a>(&mut self, op: Operator<'a>) -> Result<Instruction<'a>, reencode::Error<TooBig>> {
        match import_for(&op, self.cx.shared) {
            Some(imp) => Ok(Instruction::Call(self.cx.atomics[&imp])),
            None => reencode::utils::instruction(self, op),
        }
    }
}
