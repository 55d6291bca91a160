//! Adoption, for the rewrite (`rewrite.rs`): what lets a host thread become a real guest
//! thread of an instance, so that export calls from host threads run in parallel with
//! their own stack, thread-locals and `pthread_self` (see `instance/worker.rs`).
//!
//! wasi-libc builds a thread in `pthread_create` (stack, TLS block, `struct pthread`,
//! the thread list, libc's "threads exist" switches) and hands it to `wasi::thread-spawn`;
//! `wasi_thread_start` then installs that stack and TLS in the new instance. The rewrite
//! lets the library use that very path for a host thread:
//!
//! - an import `wasithreads:internal::adopted` (`() -> ()`; the host makes it unwind);
//! - an *entry* function `(i32) -> i32` that calls it, in a new slot at the end of
//!   table 0 (the table function pointers index);
//! - an export [`ADOPT_EXPORT`] `() -> i32` that calls the module's own `__pthread_create`
//!   (found by name in the name section) with that entry, a 16-byte scratch
//!   `pthread_t` on the calling thread's shadow stack (`__stack_pointer`, by name), and
//!   returns its result (0 or an errno).
//!
//! The host calls the export on the instance's main store with an adoption pending; its
//! `thread-spawn` then hands out a thread id without starting an OS thread; the host
//! thread instantiates the module in a store of its own and calls
//! `wasi_thread_start(tid, arg)`, which sets up the thread and calls the entry, whose
//! import unwinds back to the host: the instance keeps its stack, TLS and registered
//! libc thread, ready for export calls.
//!
//! A module without the names, with an imported table 0, or with a `__pthread_create` of
//! another type gets nothing: its calls are serialised on the main instance.

use std::borrow::Cow;

use wasm_encoder::{ConstExpr, Elements, Instruction, ValType};
use wasmparser::{Name, Payload, TypeRef};

/// The export the rewrite adds: `() -> i32`, `__pthread_create` with the adoption entry.
pub(crate) const ADOPT_EXPORT: &str = "wasithreads:adopt";

pub(super) use crate::host::ADOPTED_IMPORT;

/// The scratch the export takes on the shadow stack for the `pthread_t` out-parameter,
/// keeping the stack 16-byte aligned.
const SCRATCH: i32 = 16;

/// What the scan learns of a module for adoption.
#[derive(Default)]
pub(super) struct Finds {
    /// Per type index: whether it is `(i32, i32, i32, i32) -> i32`, `pthread_create`'s.
    create_types: Vec<bool>,
    func_imports: u32,
    /// The type index of each defined function.
    func_types: Vec<u32>,
    table_imports: u32,
    /// Table 0's limits, when the module defines it as a 32-bit funcref table.
    table0: Option<(u64, Option<u64>)>,
    /// Per global (imports first): whether it is a mutable i32.
    mutable_i32: Vec<bool>,
    pthread_create: Option<u32>,
    stack_pointer: Option<u32>,
    has_elements: bool,
    has_exports: bool,
}

/// Where the adoption pieces go in a module that can have them.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    /// `__pthread_create`, in the original module's function indices.
    pub pthread_create: u32,
    /// `__stack_pointer`'s global index.
    pub stack_pointer: u32,
    /// The table slot of the entry: table 0's old minimum.
    pub slot: u64,
    /// Whether the module has an element section (else the rewrite adds one).
    pub has_elements: bool,
}

impl Finds {
    /// Notes what `payload` says about adoption.
    pub(super) fn note(&mut self, payload: &Payload<'_>) -> wasmparser::Result<()> {
        match payload {
            Payload::TypeSection(r) => {
                for group in r.clone() {
                    for sub in group?.types() {
                        let is_create = match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                f.params() == [wasmparser::ValType::I32; 4] && f.results() == [wasmparser::ValType::I32]
                            }
                            _ => false,
                        };
                        self.create_types.push(is_create);
                    }
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.clone().into_imports() {
                    match imp?.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => self.func_imports += 1,
                        TypeRef::Table(_) => self.table_imports += 1,
                        TypeRef::Global(g) => {
                            self.mutable_i32.push(g.mutable && g.content_type == wasmparser::ValType::I32);
                        }
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => {
                for ty in r.clone() {
                    self.func_types.push(ty?);
                }
            }
            Payload::TableSection(r) => {
                if let Some(first) = r.clone().into_iter().next() {
                    let ty = first?.ty;
                    if ty.element_type == wasmparser::RefType::FUNCREF && !ty.table64 && !ty.shared {
                        self.table0 = Some((ty.initial, ty.maximum));
                    }
                }
            }
            Payload::GlobalSection(r) => {
                for g in r.clone() {
                    let ty = g?.ty;
                    self.mutable_i32.push(ty.mutable && ty.content_type == wasmparser::ValType::I32);
                }
            }
            Payload::ElementSection(_) => self.has_elements = true,
            Payload::ExportSection(_) => self.has_exports = true,
            Payload::CustomSection(c) => {
                if let wasmparser::KnownCustom::Name(names) = c.as_known() {
                    // A malformed name section only costs the adoption, as it costs names.
                    for name in names.into_iter().flatten() {
                        self.note_names(name);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn note_names(&mut self, name: Name<'_>) {
        let find = |map: wasmparser::NameMap<'_>, want: &[&str]| {
            map.into_iter().flatten().find(|n| want.contains(&n.name)).map(|n| n.index)
        };
        match name {
            Name::Function(map) => {
                self.pthread_create = self.pthread_create.or(find(map, &["__pthread_create", "pthread_create"]));
            }
            Name::Global(map) => self.stack_pointer = self.stack_pointer.or(find(map, &["__stack_pointer"])),
            _ => {}
        }
    }

    /// The plan, when the module has everything adoption needs.
    pub(super) fn plan(&self) -> Option<Plan> {
        let create = self.pthread_create?;
        let defined = create.checked_sub(self.func_imports)?;
        let ty = *self.func_types.get(defined as usize)?;
        let sp = self.stack_pointer?;
        let (initial, maximum) = self.table0?;
        let usable = self.table_imports == 0
            && self.has_exports
            && self.create_types.get(ty as usize).copied().unwrap_or(false)
            && self.mutable_i32.get(sp as usize).copied().unwrap_or(false)
            && initial < i32::MAX as u64
            && maximum.is_none_or(|m| m < i32::MAX as u64);
        usable.then_some(Plan {
            pthread_create: create,
            stack_pointer: sp,
            slot: initial,
            has_elements: self.has_elements,
        })
    }
}

impl Plan {
    /// Table 0's limits with room for the entry.
    pub(super) fn table_type(&self, mut ty: wasm_encoder::TableType) -> wasm_encoder::TableType {
        ty.minimum = ty.minimum.max(self.slot + 1);
        if let Some(max) = ty.maximum {
            ty.maximum = Some(max.max(self.slot + 1));
        }
        ty
    }

    /// Adds the element segment that puts `entry` in its slot.
    pub(super) fn add_element(&self, elements: &mut wasm_encoder::ElementSection, entry: u32) {
        let offset = ConstExpr::i32_const(self.slot as i32);
        elements.active(None, &offset, Elements::Functions(Cow::Borrowed(&[entry])));
    }

    /// The entry, `(i32) -> i32`: calls the `adopted` import (function `adopted`), which
    /// never returns normally.
    pub(super) fn entry_body(adopted: u32) -> wasm_encoder::Function {
        let mut f = wasm_encoder::Function::new([]);
        f.instruction(&Instruction::Call(adopted));
        f.instruction(&Instruction::Unreachable);
        f.instruction(&Instruction::End);
        f
    }

    /// The export, `() -> i32`: `__pthread_create(&scratch, NULL, slot, NULL)` with the
    /// scratch on the shadow stack. `create` and `stack_pointer` are indices in the
    /// rewritten module.
    pub(super) fn export_body(&self, create: u32, stack_pointer: u32) -> wasm_encoder::Function {
        let mut f = wasm_encoder::Function::new([(1, ValType::I32)]);
        for ins in [
            Instruction::GlobalGet(stack_pointer),
            Instruction::I32Const(SCRATCH),
            Instruction::I32Sub,
            Instruction::LocalTee(0),
            Instruction::GlobalSet(stack_pointer),
            Instruction::LocalGet(0),
            Instruction::I32Const(0),
            Instruction::I32Const(self.slot as i32),
            Instruction::I32Const(0),
            Instruction::Call(create),
            Instruction::LocalGet(0),
            Instruction::I32Const(SCRATCH),
            Instruction::I32Add,
            Instruction::GlobalSet(stack_pointer),
            Instruction::End,
        ] {
            f.instruction(&ins);
        }
        f
    }
}
