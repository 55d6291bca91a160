//! The host memory one instance of a module takes for itself, estimated from above from
//! the module's sections before any instance exists: Wasmtime lays out each instance's
//! context (`VMContext`) from the same counts (Wasmtime 48's `VMOffsets`), and keeps a
//! few objects per table and memory beside it. Runs charge it to their
//! `max_instance_bytes` (`crate::limits::InstanceCost`) when a thread's store is made.

use anyhow::Result;
use wasmparser::{ElementItems, ExternalKind, Parser, Payload};

/// The context's fixed part (its header and the builtin function table), rounded up.
const BASE: u64 = 1024;
/// An import of any kind: a function import is three pointers, the others two or three.
const IMPORT: u64 = 32;
/// A defined global: its 16-byte definition, and as much again for what Wasmtime
/// allocates while it evaluates the initialisers.
const GLOBAL: u64 = 32;
/// A function reference (`VMFuncRef`, four pointers) of each function that escapes: into
/// a table or element segment, through an export, or as the start function.
const FUNC_REF: u64 = 32;
/// A defined table or memory: its definition in the context and Wasmtime's own object
/// for it (its elements or pages are counted apart).
const TABLE_OR_MEMORY: u64 = 256;

/// The estimate for the (rewritten) module `wasm`, which is valid.
pub(super) fn instance_bytes(wasm: &[u8]) -> Result<u64> {
    let mut bytes = BASE;
    for payload in Parser::new(0).parse_all(wasm) {
        let (count, each) = match payload? {
            Payload::ImportSection(r) => {
                let mut n = 0u64;
                for import in r.into_imports() {
                    import?;
                    n += 1;
                }
                (n, IMPORT)
            }
            Payload::GlobalSection(r) => (u64::from(r.count()), GLOBAL),
            Payload::TableSection(r) => (u64::from(r.count()), TABLE_OR_MEMORY),
            Payload::MemorySection(r) => (u64::from(r.count()), TABLE_OR_MEMORY),
            Payload::ExportSection(r) => {
                let mut n = 0u64;
                for e in r {
                    n += u64::from(e?.kind == ExternalKind::Func);
                }
                (n, FUNC_REF)
            }
            Payload::StartSection { .. } => (1, FUNC_REF),
            Payload::ElementSection(r) => {
                let mut n = 0u64;
                for e in r {
                    n += u64::from(match e?.items {
                        ElementItems::Functions(f) => f.count(),
                        ElementItems::Expressions(_, x) => x.count(),
                    });
                }
                (n, FUNC_REF)
            }
            _ => (0, 0),
        };
        bytes = bytes.saturating_add(count.saturating_mul(each));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_globals_functions_that_escape_imports_tables_and_memories() {
        let wasm = wat::parse_str(
            r#"(module
              (import "a" "f" (func $f))
              (import "a" "g" (global i32))
              (global (mut i32) (i32.const 0)) (global (mut i32) (i32.const 0)) (global i64 (i64.const 1))
              (memory 0) (memory 1)
              (table 4 funcref)
              (func $x) (func $y) (func $z)
              (elem (i32.const 0) func $x $y $x)
              (export "y" (func $y)) (export "m" (memory 0)))"#,
        )
        .unwrap();
        let want = BASE + 2 * IMPORT + 3 * GLOBAL + 3 * TABLE_OR_MEMORY + (3 + 1) * FUNC_REF;
        assert_eq!(instance_bytes(&wasm).unwrap(), want);
    }
}
