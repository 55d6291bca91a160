//! The wasi-threads shape of a compiled module: which imports it needs (each must be one
//! the library provides), its memory, and whether it can start threads and run at all.
//! Read from the compiled module's imports and exports, so it works the same for compiled
//! and deserialized modules.

use anyhow::{anyhow, bail, Result};
use wasmtime::{ExternType, MemoryType, ValType};

use super::adopt::{ADOPTED_IMPORT, ADOPT_EXPORT};
use crate::error::{error, ErrorKind, ResultKind};
use crate::group::THREAD_START;
use crate::host::{AtomicImport, FIRST_INSTANCE_IMPORT, INTERNAL_MODULE, P1_FUNCTIONS, P1_MODULE, SPAWN_IMPORT};
use crate::hostfunc::FuncType;
use crate::interrupt::{self, has_reserved_page, Placement};

/// The memory a module imports; every run creates one and all its threads share it.
#[derive(Clone, Debug)]
pub(crate) struct MemoryImport {
    pub module: String,
    pub name: String,
    pub ty: MemoryType,
}

/// What a run needs to know about a module.
pub(super) struct Shape {
    pub memory: Option<MemoryImport>,
    /// Where its interruption points load from.
    pub interrupt: Placement,
    /// The host functions of the atomics rewrite that the module imports.
    pub atomics: Vec<AtomicImport>,
    /// `Err(why)` when `wasi_thread_start` is missing or has the wrong type.
    pub thread_start: Result<(), String>,
    /// `Err(why)` when `_start` is missing or has the wrong type.
    pub start: Result<(), String>,
    /// Function imports the library does not provide: each run or instance must get them
    /// from the host's functions (`crate::HostFunc`).
    pub host_imports: Vec<HostImport>,
    /// Whether the rewrite gave it the adoption pieces (`adopt.rs`).
    pub adopt: bool,
}

/// A function the module imports from the host.
#[derive(Clone, Debug)]
pub(crate) struct HostImport {
    pub module: String,
    pub name: String,
    /// `None` when a parameter or result is not an i32, i64, f32 or f64: no host function
    /// can be defined for it.
    pub ty: Option<FuncType>,
    /// The type as Wasmtime writes it, for errors.
    pub wasm_ty: String,
}

impl Shape {
    pub(super) fn of(module: &wasmtime::Module) -> Result<Shape> {
        // Every error of the imports' check is one of linking.
        let (memory, spawns, atomics, host_imports) = check_imports(module).kind(ErrorKind::Link)?;
        let reserved = memory
            .as_ref()
            .filter(|m| m.ty.is_shared())
            .is_some_and(|m| has_reserved_page(m.ty.is_64(), Some(u32::from(m.ty.page_size_log2())), m.ty.maximum()));
        let interrupt =
            if module.imports().any(|i| (i.module(), i.name()) == (INTERNAL_MODULE, interrupt::MEMORY_IMPORT)) {
                Placement::ImportedMemory
            } else if reserved {
                Placement::ReservedPage
            } else {
                return Err(error(
                    ErrorKind::BadModule,
                    "the compiled module has no interruption points: it was not made by this version of wasithreads",
                ));
            };
        if spawns && !memory.as_ref().is_some_and(|m| m.ty.is_shared()) {
            return Err(error(
                ErrorKind::Link,
                "the module imports wasi::thread-spawn but has no shared memory: every thread would get \
                 its own copy of a memory that is not `shared`, so threads could not see each other's \
                 data; declare the memory `shared` (with a maximum)",
            ));
        }
        let export = |name: &str| module.get_export(name);
        let thread_start = match export(THREAD_START) {
            None => Err(format!("the module has no `{THREAD_START}` export")),
            Some(ty) if is_func(&ty, &[ValType::I32, ValType::I32], &[]) => Ok(()),
            Some(_) => Err(format!("`{THREAD_START}` is not a function of type (i32, i32) -> ()")),
        };
        let start = match export("_start") {
            None => Err("the module has no `_start` export (is it a WASI command?)".to_string()),
            Some(ty) if is_func(&ty, &[], &[]) => Ok(()),
            Some(_) => Err("`_start` is not a function of type () -> ()".to_string()),
        };
        let adopt = export(ADOPT_EXPORT).is_some_and(|ty| is_func(&ty, &[], &[ValType::I32]))
            && module.imports().any(|i| (i.module(), i.name()) == (INTERNAL_MODULE, ADOPTED_IMPORT));
        Ok(Shape { memory, interrupt, atomics, thread_start, start, host_imports, adopt })
    }
}

fn is_func(ty: &ExternType, params: &[ValType], results: &[ValType]) -> bool {
    let ExternType::Func(f) = ty else { return false };
    let same = |a: &mut dyn ExactSizeIterator<Item = ValType>, b: &[ValType]| {
        a.len() == b.len() && a.zip(b).all(|(x, y)| ValType::eq(&x, y))
    };
    same(&mut f.params(), params) && same(&mut f.results(), results)
}

/// Checks every import is one we provide or a function the host may define. Returns the
/// memory import, whether the module imports `wasi::thread-spawn`, the atomics functions
/// the rewrite added, and the functions left to the host.
type Imports = (Option<MemoryImport>, bool, Vec<AtomicImport>, Vec<HostImport>);

fn check_imports(module: &wasmtime::Module) -> Result<Imports> {
    let mut memory = None;
    let mut spawns = false;
    let mut atomics = Vec::new();
    let mut host = Vec::new();
    for imp in module.imports() {
        let (m, n) = (imp.module(), imp.name());
        match imp.ty() {
            // The run's interrupt page, added by the rewrite; not the module's memory.
            ExternType::Memory(_) if (m, n) == (INTERNAL_MODULE, interrupt::MEMORY_IMPORT) => {}
            ExternType::Memory(ty) => {
                if memory.is_some() {
                    bail!("the module imports more than one memory (`{m}::{n}` is the second)");
                }
                memory = Some(MemoryImport { module: m.into(), name: n.into(), ty });
            }
            ty @ ExternType::Func(_) => {
                if (m, n) == SPAWN_IMPORT {
                    if !is_func(&ty, &[ValType::I32], &[ValType::I32]) {
                        bail!("import `wasi::thread-spawn` must have type (i32) -> i32");
                    }
                    spawns = true;
                } else if m == INTERNAL_MODULE && (n == FIRST_INSTANCE_IMPORT || n == ADOPTED_IMPORT) {
                    // Defined for every module.
                } else if m == INTERNAL_MODULE {
                    atomics.push(AtomicImport::parse(n).ok_or_else(|| anyhow!("unknown import `{m}::{n}`"))?);
                } else if m == P1_MODULE && !P1_FUNCTIONS.contains(&n) {
                    bail!("unknown import `{m}::{n}`: it is not a WASI preview 1 function");
                } else if let (false, ExternType::Func(f)) = (m == P1_MODULE, &ty) {
                    let ty = FuncType::of(f);
                    let wasm_ty = ty.as_ref().map_or_else(|| f.to_string(), ToString::to_string);
                    host.push(HostImport { module: m.into(), name: n.into(), ty, wasm_ty });
                }
            }
            _ => bail!("unsupported import `{m}::{n}`: only functions and one memory can be imported"),
        }
    }
    Ok((memory, spawns, atomics, host))
}
