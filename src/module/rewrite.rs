//! Module rewriting: turn `memory.atomic.wait32/64` and `memory.atomic.notify` on the
//! imported shared memory into calls to host functions (`host/atomics.rs`). Pure: bytes
//! in, bytes out.
//!
//! Wasmtime has no API that wakes a thread parked in a wasm wait instruction (Wasmtime issue
//! #12809), so a run that ends could not stop a thread waiting forever. The host functions
//! implement wait and notify with `parking_lot_core`, keyed by the host address of the
//! waited-on word, and record who waits where; teardown wakes those addresses. Waits and
//! notifies are rewritten together so that both sides use the same parking lot.
//!
//! Each distinct (instruction, memarg offset) gets its own import (`wait32@16`,
//! `notify@0`), because the host must add the offset to the address operand, which sits
//! under the other operands on the stack.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{EntityType, Instruction, ValType};
use wasmparser::{MemArg, Operator, Parser, Payload, TypeRef};

use crate::host::atomics::{ATOMICS_MODULE, AtomicImport, AtomicOp};

/// The import an instruction is rewritten to, if it is one we rewrite.
fn import_for(op: &Operator<'_>) -> Option<AtomicImport> {
    let (op, memarg): (AtomicOp, &MemArg) = match op {
        Operator::MemoryAtomicWait32 { memarg } => (AtomicOp::Wait32, memarg),
        Operator::MemoryAtomicWait64 { memarg } => (AtomicOp::Wait64, memarg),
        Operator::MemoryAtomicNotify { memarg } => (AtomicOp::Notify, memarg),
        _ => return None,
    };
    (memarg.memory == 0).then_some(AtomicImport { op, offset: memarg.offset })
}

/// What the first pass learned about a module.
struct Scan {
    num_types: u32,
    num_func_imports: u32,
    memory0_imported_shared: bool,
    atomics: BTreeSet<AtomicImport>,
}

fn scan(wasm: &[u8]) -> Result<Scan> {
    let mut s = Scan { num_types: 0, num_func_imports: 0, memory0_imported_shared: false, atomics: BTreeSet::new() };
    let mut memories = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(r) => {
                for group in r {
                    s.num_types += group?.types().len() as u32;
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    match imp?.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => s.num_func_imports += 1,
                        TypeRef::Memory(m) => {
                            if memories == 0 && m.shared && !m.memory64 {
                                s.memory0_imported_shared = true;
                            }
                            memories += 1;
                        }
                        _ => {}
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader()?;
                while !ops.eof() {
                    if let Some(imp) = import_for(&ops.read()?) {
                        s.atomics.insert(imp);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

struct AtomicsRewriter {
    num_func_imports: u32,
    /// Type index of the first added function type (wait32, then wait64, then notify).
    first_type: u32,
    /// Function index of the import for each instruction, in the rewritten module.
    index: BTreeMap<AtomicImport, u32>,
}

impl Reencode for AtomicsRewriter {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error> {
        Ok(if func >= self.num_func_imports { func + self.index.len() as u32 } else { func })
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error> {
        reencode::utils::parse_type_section(self, types, section)?;
        types.ty().function([ValType::I32, ValType::I32, ValType::I64], [ValType::I32]);
        types.ty().function([ValType::I32, ValType::I64, ValType::I64], [ValType::I32]);
        types.ty().function([ValType::I32, ValType::I32], [ValType::I32]);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error> {
        reencode::utils::parse_import_section(self, imports, section)?;
        for imp in self.index.keys() {
            let ty = self.first_type + imp.op as u32;
            imports.import(ATOMICS_MODULE, &imp.name(), EntityType::Function(ty));
        }
        Ok(())
    }

    fn instruction<'a>(&mut self, op: Operator<'a>) -> Result<Instruction<'a>, reencode::Error> {
        match import_for(&op) {
            Some(imp) => Ok(Instruction::Call(self.index[&imp])),
            None => reencode::utils::instruction(self, op),
        }
    }
}

/// Rewrites the atomic waits and notifies of a validated module. Returns `None` when there
/// is nothing to rewrite (none of them, or memory 0 is not an imported shared memory).
pub(crate) fn rewrite_atomics(wasm: &[u8]) -> Result<Option<Vec<u8>>> {
    let scan = scan(wasm).context("reading module")?;
    if scan.atomics.is_empty() || !scan.memory0_imported_shared {
        return Ok(None);
    }
    let index = scan.atomics.iter().enumerate().map(|(i, imp)| (*imp, scan.num_func_imports + i as u32)).collect();
    let mut r = AtomicsRewriter { num_func_imports: scan.num_func_imports, first_type: scan.num_types, index };
    let mut module = wasm_encoder::Module::new();
    r.parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| anyhow::anyhow!("rewriting atomic waits: {e}"))?;
    Ok(Some(module.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_waits_and_notifies_and_shifts_function_indices() {
        let wat = r#"(module
            (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
            (import "env" "memory" (memory 1 1 shared))
            (func $a (export "a") (result i32)
              (memory.atomic.wait32 offset=8 (i32.const 0) (i32.const 0) (i64.const 0)))
            (func $b (export "b") (result i32)
              (drop (call $a))
              (drop (memory.atomic.notify (i32.const 4) (i32.const 1)))
              (memory.atomic.wait64 (i32.const 0) (i64.const 1) (i64.const 0))))"#;
        let wasm = wat::parse_str(wat).unwrap();
        let out = rewrite_atomics(&wasm).unwrap().unwrap();
        let text = wasmprinter::print_bytes(&out).unwrap();
        assert!(text.contains("\"wasithreads:internal\" \"wait32@8\""), "{text}");
        assert!(text.contains("\"wasithreads:internal\" \"wait64@0\""), "{text}");
        assert!(text.contains("\"wasithreads:internal\" \"notify@0\""), "{text}");
        assert!(!text.contains("memory.atomic.wait") && !text.contains("memory.atomic.notify"), "{text}");
        // $a moved from index 1 to 4 (three imports were added after the spawn import),
        // and its name came along.
        assert!(text.contains("call $a"), "{text}");
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all()).validate_all(&out).unwrap();
        for name in ["wait32@8", "wait64@0", "notify@0"] {
            assert_eq!(AtomicImport::parse(name).unwrap().name(), name);
        }
        assert_eq!(AtomicImport::parse("wait16@0"), None);
    }

    #[test]
    fn leaves_modules_without_shared_imported_memory_alone() {
        let wasm = wat::parse_str(
            r#"(module (memory 1 1 shared)
                 (func (result i32) (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const 0))))"#,
        )
        .unwrap();
        assert!(rewrite_atomics(&wasm).unwrap().is_none());
    }
}
