//! Module rewriting: turn `memory.atomic.wait32/64` on the imported shared memory into calls
//! to host functions, so a run that ends can wake threads parked in an infinite wait.
//!
//! Wasmtime has no API that wakes a thread parked in a wasm wait instruction (Wasmtime issue
//! #12809). A host function that waits with `SharedMemory::atomic_wait32/64` records the
//! address it waits on; the run's teardown notifies every recorded address. Guest
//! `memory.atomic.notify` instructions are unchanged: both sides use Wasmtime's parking spot.
//!
//! Each distinct memarg offset gets its own import (`wait32@16`), because the host must add
//! the offset to the address operand, and the operand sits under two others on the stack.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{EntityType, Instruction, ValType};
use wasmparser::{Operator, Parser, Payload, TypeRef};

/// Import module of the host wait functions added by the rewrite.
pub(crate) const WAIT_MODULE: &str = "wasithreads:internal";

/// One host wait function the rewritten module imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct WaitImport {
    /// `memory.atomic.wait64` (else wait32).
    pub wide: bool,
    /// The memarg offset added to the address operand.
    pub offset: u64,
}

impl WaitImport {
    pub(crate) fn name(&self) -> String {
        format!("wait{}@{}", if self.wide { 64 } else { 32 }, self.offset)
    }

    /// The inverse of [`WaitImport::name`], for modules loaded from a serialized cache.
    pub(crate) fn parse(name: &str) -> Option<WaitImport> {
        let (kind, offset) = name.split_once('@')?;
        let wide = match kind {
            "wait32" => false,
            "wait64" => true,
            _ => return None,
        };
        Some(WaitImport { wide, offset: offset.parse().ok()? })
    }
}

/// What the first pass learned about a module.
struct Scan {
    num_types: u32,
    num_func_imports: u32,
    memory0_imported_shared: bool,
    waits: Vec<WaitImport>,
}

fn scan(wasm: &[u8]) -> Result<Scan> {
    let mut s = Scan { num_types: 0, num_func_imports: 0, memory0_imported_shared: false, waits: Vec::new() };
    let mut memories = 0u32;
    let mut waits = std::collections::BTreeSet::new();
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
                    let (wide, memarg) = match ops.read()? {
                        Operator::MemoryAtomicWait32 { memarg } => (false, memarg),
                        Operator::MemoryAtomicWait64 { memarg } => (true, memarg),
                        _ => continue,
                    };
                    if memarg.memory == 0 {
                        waits.insert(WaitImport { wide, offset: memarg.offset });
                    }
                }
            }
            _ => {}
        }
    }
    s.waits = waits.into_iter().collect();
    Ok(s)
}

struct WaitRewriter {
    num_func_imports: u32,
    type32: u32,
    type64: u32,
    /// Function index of the import for each wait, in the rewritten module.
    index: BTreeMap<WaitImport, u32>,
}

impl Reencode for WaitRewriter {
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
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error> {
        reencode::utils::parse_import_section(self, imports, section)?;
        for w in self.index.keys() {
            let ty = if w.wide { self.type64 } else { self.type32 };
            imports.import(WAIT_MODULE, &w.name(), EntityType::Function(ty));
        }
        Ok(())
    }

    fn instruction<'a>(&mut self, op: Operator<'a>) -> Result<Instruction<'a>, reencode::Error> {
        let key = match op {
            Operator::MemoryAtomicWait32 { memarg } if memarg.memory == 0 => {
                WaitImport { wide: false, offset: memarg.offset }
            }
            Operator::MemoryAtomicWait64 { memarg } if memarg.memory == 0 => {
                WaitImport { wide: true, offset: memarg.offset }
            }
            _ => return reencode::utils::instruction(self, op),
        };
        Ok(Instruction::Call(self.index[&key]))
    }
}

/// Rewrites the wait instructions of a validated module. Returns `None` when there is
/// nothing to rewrite (no waits, or memory 0 is not an imported shared memory).
pub(crate) fn rewrite_waits(wasm: &[u8]) -> Result<Option<Vec<u8>>> {
    let scan = scan(wasm).context("reading module")?;
    if scan.waits.is_empty() || !scan.memory0_imported_shared {
        return Ok(None);
    }
    let index = scan
        .waits
        .iter()
        .enumerate()
        .map(|(i, w)| (*w, scan.num_func_imports + i as u32))
        .collect();
    let mut r = WaitRewriter {
        num_func_imports: scan.num_func_imports,
        type32: scan.num_types,
        type64: scan.num_types + 1,
        index,
    };
    let mut module = wasm_encoder::Module::new();
    r.parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| anyhow::anyhow!("rewriting atomic waits: {e}"))?;
    Ok(Some(module.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_waits_and_shifts_function_indices() {
        let wat = r#"(module
            (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
            (import "env" "memory" (memory 1 1 shared))
            (func $a (export "a") (result i32)
              (memory.atomic.wait32 offset=8 (i32.const 0) (i32.const 0) (i64.const 0)))
            (func $b (export "b") (result i32)
              (drop (call $a))
              (memory.atomic.wait64 (i32.const 0) (i64.const 1) (i64.const 0))))"#;
        let wasm = wat::parse_str(wat).unwrap();
        let out = rewrite_waits(&wasm).unwrap().unwrap();
        assert_eq!(WaitImport::parse("wait32@8"), Some(WaitImport { wide: false, offset: 8 }));
        let text = wasmprinter::print_bytes(&out).unwrap();
        assert!(text.contains("\"wasithreads:internal\" \"wait32@8\""), "{text}");
        assert!(text.contains("\"wasithreads:internal\" \"wait64@0\""), "{text}");
        assert!(!text.contains("memory.atomic.wait"), "{text}");
        // $a moved from index 1 to 3 (two imports were added after the spawn import).
        assert!(text.contains("call $a") || text.contains("call 3"), "{text}");
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&out)
            .unwrap();
    }

    #[test]
    fn leaves_modules_without_shared_imported_memory_alone() {
        let wasm = wat::parse_str(
            r#"(module (memory 1 1 shared)
                 (func (result i32) (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const 0))))"#,
        )
        .unwrap();
        assert!(rewrite_waits(&wasm).unwrap().is_none());
    }
}
