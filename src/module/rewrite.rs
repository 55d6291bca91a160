//! Module rewriting, bytes to bytes, so that every thread of a run shares one memory
//! and every wait on it can be woken by teardown:
//!
//! - `memory.atomic.wait32/64` and `memory.atomic.notify` on the shared memory become
//!   calls to host functions (`host/atomics.rs`). Wasmtime has no API that wakes a thread
//!   parked in a wasm wait instruction (Wasmtime issue #12809), so a run that ends could
//!   not stop a thread waiting forever. The host functions implement wait and notify with
//!   `parking_lot_core`, keyed by the host address of the waited-on word, and record who
//!   waits where; teardown wakes those addresses. Waits and notifies are rewritten
//!   together so that both sides use the same parking lot. Each distinct (instruction,
//!   memarg offset) gets its own import (`wait32@16`, `notify@0`), because the host must
//!   add the offset to the address operand, which sits under the other operands.
//! - A shared memory the module *defines* becomes an import
//!   (`wasithreads:internal::memory`), so that the run creates it once and every thread's
//!   instance uses it (Wasmtime 46 gave each thread its own copy: Wasmtime issue #12219).
//!   Its export and its index stay as they were for the module's code.
//! - Active data segments of the shared memory become passive, and a generated start
//!   function copies them in with `memory.init` only in the run's first instance (asking
//!   the host `wasithreads:internal::first_instance`), then calls the module's own start
//!   function: a spawned thread's instantiation no longer re-applies them over what other
//!   threads wrote.
//!
//! - A dead `i32.atomic.load` goes at the head of every loop and at the entry of every
//!   function that could otherwise run long without meeting one (`points.rs`: functions
//!   on call cycles, indirect callers, callers of big call trees; not leaves and their
//!   small helpers): an *interruption point*. It loads from the run's *interrupt page*
//!   (`crate::interrupt`): the shared memory's reserved page, or, for a module
//!   without a shared memory that allows it, a one-page memory the module imports
//!   (`wasithreads:internal::interrupt`). While the run goes on the load costs about what
//!   a load costs; when the run ends, teardown makes the page inaccessible and the next
//!   such load in every thread faults. Wasmtime's own signal handler turns the fault into
//!   a "memory out of bounds" trap (the address lies in a memory of the store), which the
//!   thread reports as stopped. This replaces Wasmtime's epoch checks (a compare and
//!   branch at the same places, about 5x the cost; see Wasmtime issue #1749 and PR
//!   #12990).
//! - The rewrite never makes a valid module invalid. A function body that would grow past
//!   the size Wasmtime accepts with inline points (9 or more bytes each) gets compact
//!   ones instead: a call (2 or 3 bytes) of a *helper*, a function the rewrite then adds
//!   before the module's own (so its index is small: usually a 2-byte call), whose body
//!   is the inline point; and only at loops something branches to (a loop nothing
//!   branches to runs once). Only such bodies pay for the call. A body still too big
//!   even so (more than about 5.4 MB of nothing but tiny loops) is refused, naming the
//!   function and its offset in the user's module.
//!
//! A module may have at most one shared memory of its own (it is the one all threads
//! share).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{EntityType, Instruction, MemoryType, SectionId, ValType};
use wasmparser::{DataKind, Operator, Parser, Payload, TypeRef};

use super::adopt::{self, Plan, ADOPTED_IMPORT, ADOPT_EXPORT};
use super::body::{self, Indices, TooBig};
use super::points::Calls;
use crate::error::{error, ErrorKind, ResultKind};
use crate::host::{AtomicImport, FIRST_INSTANCE_IMPORT, INTERNAL_MODULE, SHARED_MEMORY_IMPORT};
use crate::interrupt::{self, has_reserved_page, RESERVED_PAGE};
use crate::trace::OffsetMap;

/// Where the module's one shared memory is.
#[derive(Clone, Copy, Debug)]
struct Shared {
    /// Its index in the original module.
    index: u32,
    /// `Some(type)` when the module defines it (it becomes an import).
    defined: Option<wasmparser::MemoryType>,
    /// Whether it has the reserved page, where interruption points then load from
    /// (`crate::interrupt`).
    reserved: bool,
}

/// What the first pass learned about a module.
#[derive(Default)]
struct Scan {
    num_types: u32,
    num_func_imports: u32,
    num_defined_funcs: u32,
    memory_imports: u32,
    shared: Option<Shared>,
    atomics: BTreeSet<AtomicImport>,
    /// The active data segments of the shared memory: index, offset, length.
    active: Vec<(u32, i32, u32)>,
    start: Option<u32>,
    has_data_count: bool,
    has_type_section: bool,
    has_import_section: bool,
    has_function_section: bool,
    has_code_section: bool,
    has_start_section: bool,
    data_segments: u32,
    /// What each defined function calls, for where entry points go (`points.rs`).
    calls: Vec<Calls>,
    /// What adoption needs (`adopt.rs`).
    adopt: adopt::Finds,
}

fn scan(wasm: &[u8]) -> Result<Scan> {
    let mut s = Scan::default();
    let mut memories = 0u32;
    let mut data_index = 0u32;
    let mut bodies = Vec::new();
    let note_memory = |s: &mut Scan, index: u32, ty: wasmparser::MemoryType, defined: bool| -> Result<()> {
        if !ty.shared {
            return Ok(());
        }
        if let Some(first) = s.shared {
            bail!(
                "the module has more than one shared memory (memories {} and {index}): wasithreads shares one \
                 memory between the threads of a run",
                first.index
            );
        }
        if ty.memory64 {
            bail!("shared memory {index} is a 64-bit memory, which wasithreads does not support");
        }
        let reserved = has_reserved_page(ty.memory64, ty.page_size_log2, ty.maximum);
        s.shared = Some(Shared { index, defined: defined.then_some(ty), reserved });
        Ok(())
    };
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        s.adopt.note(&payload)?;
        match payload {
            Payload::TypeSection(r) => {
                s.has_type_section = true;
                for group in r {
                    s.num_types += group?.types().len() as u32;
                }
            }
            Payload::ImportSection(r) => {
                s.has_import_section = true;
                for imp in r.into_imports() {
                    let imp = imp?;
                    if imp.module == INTERNAL_MODULE {
                        return Err(error(
                            ErrorKind::Link,
                            format!(
                                "the module imports `{}::{}`: the import module `{INTERNAL_MODULE}` is reserved for \
                                 wasithreads itself",
                                imp.module, imp.name
                            ),
                        ));
                    }
                    match imp.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => s.num_func_imports += 1,
                        TypeRef::Memory(m) => {
                            note_memory(&mut s, memories, m, false)?;
                            memories += 1;
                            s.memory_imports += 1;
                        }
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => {
                s.has_function_section = true;
                s.num_defined_funcs = r.count();
            }
            Payload::MemorySection(r) => {
                for m in r {
                    note_memory(&mut s, memories, m?, true)?;
                    memories += 1;
                }
            }
            Payload::StartSection { func, .. } => {
                s.has_start_section = true;
                s.start = Some(func);
            }
            Payload::DataCountSection { .. } => s.has_data_count = true,
            Payload::DataSection(r) => {
                for d in r {
                    let d = d?;
                    if let (DataKind::Active { memory_index, offset_expr }, Some(shared)) = (&d.kind, s.shared) {
                        if *memory_index == shared.index {
                            let mut ops = offset_expr.get_operators_reader();
                            let (Operator::I32Const { value: offset }, Operator::End) = (ops.read()?, ops.read()?)
                            else {
                                bail!(
                                    "data segment {data_index} of the shared memory has an offset that is not an \
                                     `i32.const`, which wasithreads cannot apply once for all threads"
                                );
                            };
                            s.active.push((data_index, offset, d.data.len() as u32));
                        }
                    }
                    data_index += 1;
                }
                s.data_segments = data_index;
            }
            Payload::CodeSectionStart { .. } => s.has_code_section = true,
            Payload::CodeSectionEntry(body) => bodies.push(body),
            _ => {}
        }
    }
    let shared = s.shared.map_or(u32::MAX, |s| s.index);
    for (calls, atomics) in body::scan(&bodies, s.num_func_imports, shared)? {
        s.calls.push(calls);
        s.atomics.extend(atomics);
    }
    if memories >= MAX_MEMORIES {
        bail!(
            "the module has {memories} memories; WebAssembly allows {MAX_MEMORIES} and wasithreads adds one of its \
             own (the run's interrupt page), so a module may have at most {}",
            MAX_MEMORIES - 1
        );
    }
    Ok(s)
}

/// The most memories a module may have (wasmparser's limit).
const MAX_MEMORIES: u32 = 100;

struct Rewriter {
    scan: Scan,
    /// Function imports added after the module's own: atomics, then `first_instance`.
    added_func_imports: u32,
    /// Whether the helper of compact interruption points (see the opening of this file)
    /// comes after them, before the module's own functions.
    helper: bool,
    /// Function index of the import for each instruction, in the rewritten module.
    index: BTreeMap<AtomicImport, u32>,
    /// Type indices of the added function types.
    wait32_type: u32,
    first_instance_type: u32,
    init_type: u32,
    /// The generated start function, when data segments must be applied once.
    init_func: Option<u32>,
    /// Counts data segments as they are re-encoded.
    next_data: u32,
    /// Counts defined memories as they are re-encoded.
    next_defined_memory: u32,
    /// Where each rewritten instruction came from.
    map: OffsetMap,
    /// Per defined function: whether its entry gets an interruption point.
    entry_points: Vec<bool>,
    /// The adoption pieces, when the module can have them (`adopt.rs`).
    adopt: Option<Plan>,
    /// Defined tables re-encoded so far.
    next_table: u32,
}

impl Rewriter {
    fn converts_memory(&self) -> bool {
        self.scan.shared.is_some_and(|s| s.defined.is_some())
    }

    /// Whether interruption points use the shared memory's reserved page.
    fn reserved(&self) -> bool {
        self.scan.shared.is_some_and(|s| s.reserved)
    }

    /// Memory imports the rewrite adds: the converted memory, if any, and the interrupt
    /// page, unless the points use the shared memory's reserved page.
    fn added_memory_imports(&self) -> u32 {
        u32::from(self.converts_memory()) + u32::from(!self.reserved())
    }

    /// The index of the interrupt page in the rewritten module, when it has one.
    fn interrupt_memory(&self) -> u32 {
        self.scan.memory_imports + u32::from(self.converts_memory())
    }

    /// Functions the rewrite adds before the module's own: its imports, then the helper.
    fn added_funcs(&self) -> u32 {
        self.added_func_imports + u32::from(self.helper)
    }

    /// Where the original module's indices go.
    fn indices(&self) -> Indices {
        Indices {
            func_imports: self.scan.num_func_imports,
            added_funcs: self.added_funcs(),
            memory_imports: self.scan.memory_imports,
            converted_memory: self.scan.shared.filter(|s| s.defined.is_some()).map(|s| s.index),
            added_memory_imports: self.added_memory_imports(),
        }
    }

    /// What rewriting the bodies needs; interruption points load from the reserved page
    /// of the shared memory if it has one, else from the imported interrupt page.
    fn body_context(&self) -> body::Context<'_> {
        let indices = self.indices();
        let (point_memory, point_address) = match self.scan.shared {
            Some(shared) if shared.reserved => (indices.memory(shared.index), RESERVED_PAGE as i32),
            _ => (self.interrupt_memory(), 0),
        };
        body::Context {
            indices,
            atomics: &self.index,
            shared: self.scan.shared.map_or(u32::MAX, |s| s.index),
            point_memory,
            point_address,
            entry_points: &self.entry_points,
            helper: self.helper.then_some(self.scan.num_func_imports + self.added_func_imports),
        }
    }

    /// The body of the helper: an inline interruption point.
    fn helper_body(&self) -> wasm_encoder::Function {
        let cx = self.body_context();
        let mut f = wasm_encoder::Function::new([]);
        for ins in body::point(cx.point_memory, cx.point_address) {
            f.instruction(&ins);
        }
        f.instruction(&Instruction::End);
        f
    }

    /// The body of the generated start function: apply the shared memory's active
    /// segments in the run's first instance, then run the module's own start function.
    fn init_body(&mut self) -> Result<wasm_encoder::Function, reencode::Error<TooBig>> {
        let mut f = wasm_encoder::Function::new([]);
        let first_instance = self.scan.num_func_imports + self.added_func_imports - 1;
        let mem = self.memory_index(self.scan.shared.map_or(0, |s| s.index))?;
        f.instruction(&Instruction::Call(first_instance));
        f.instruction(&Instruction::If(wasm_encoder::BlockType::Empty));
        for &(segment, offset, len) in &self.scan.active {
            f.instruction(&Instruction::I32Const(offset));
            f.instruction(&Instruction::I32Const(0));
            f.instruction(&Instruction::I32Const(len as i32));
            f.instruction(&Instruction::MemoryInit { mem, data_index: segment });
        }
        f.instruction(&Instruction::End);
        // Applied or not, the segments are dropped in every instance, as instantiation
        // drops active segments: a later `memory.init` of one traps as it would have.
        for &(segment, _, _) in &self.scan.active {
            f.instruction(&Instruction::DataDrop(segment));
        }
        if let Some(start) = self.scan.start {
            f.instruction(&Instruction::Call(self.function_index(start)?));
        }
        f.instruction(&Instruction::End);
        Ok(f)
    }
}

impl Reencode for Rewriter {
    type Error = TooBig;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<TooBig>> {
        Ok(self.indices().function(func))
    }

    fn memory_index(&mut self, memory: u32) -> Result<u32, reencode::Error<TooBig>> {
        Ok(self.indices().memory(memory))
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<TooBig>> {
        reencode::utils::parse_type_section(self, types, section)?;
        add_types(types);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<TooBig>> {
        reencode::utils::parse_import_section(self, imports, section)?;
        self.add_imports(imports);
        Ok(())
    }

    fn parse_memory_section(
        &mut self,
        memories: &mut wasm_encoder::MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> Result<(), reencode::Error<TooBig>> {
        for m in section {
            let index = self.scan.memory_imports + self.next_defined_memory;
            self.next_defined_memory += 1;
            if self.converts_memory() && self.scan.shared.is_some_and(|s| s.index == index) {
                continue;
            }
            memories.memory(self.memory_type(m?)?);
        }
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), reencode::Error<TooBig>> {
        if self.helper {
            functions.function(self.init_type);
        }
        reencode::utils::parse_function_section(self, functions, section)?;
        if self.init_func.is_some() {
            functions.function(self.init_type);
        }
        if self.adopt.is_some() {
            functions.function(self.init_type + 1);
            functions.function(self.first_instance_type);
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), reencode::Error<TooBig>> {
        let bodies = section.into_iter().collect::<Result<Vec<_>, _>>()?;
        if self.helper {
            code.function(&self.helper_body());
        }
        for (f, map) in body::rewrite(&self.body_context(), bodies)? {
            code.function(&f);
            self.map.push_body(map);
        }
        if self.init_func.is_some() {
            code.function(&self.init_body()?);
        }
        if let Some(plan) = self.adopt {
            let create = self.function_index(plan.pthread_create)?;
            code.function(&Plan::entry_body(self.adopted_import()));
            code.function(&plan.export_body(create, plan.stack_pointer));
        }
        Ok(())
    }

    fn parse_table_section(
        &mut self,
        tables: &mut wasm_encoder::TableSection,
        section: wasmparser::TableSectionReader<'_>,
    ) -> Result<(), reencode::Error<TooBig>> {
        for table in section {
            let table = table?;
            let mut ty = self.table_type(table.ty)?;
            if let (Some(plan), 0) = (self.adopt, self.next_table) {
                ty = plan.table_type(ty);
            }
            self.next_table += 1;
            match table.init {
                wasmparser::TableInit::RefNull => tables.table(ty),
                wasmparser::TableInit::Expr(e) => tables.table_with_init(ty, &self.const_expr(e)?),
            };
        }
        Ok(())
    }

    fn parse_element_section(
        &mut self,
        elements: &mut wasm_encoder::ElementSection,
        section: wasmparser::ElementSectionReader<'_>,
    ) -> Result<(), reencode::Error<TooBig>> {
        reencode::utils::parse_element_section(self, elements, section)?;
        if let Some(plan) = self.adopt {
            plan.add_element(elements, self.entry_func());
        }
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error<TooBig>> {
        reencode::utils::parse_export_section(self, exports, section)?;
        if self.adopt.is_some() {
            exports.export(ADOPT_EXPORT, wasm_encoder::ExportKind::Func, self.entry_func() + 1);
        }
        Ok(())
    }

    fn parse_data(
        &mut self,
        data: &mut wasm_encoder::DataSection,
        datum: wasmparser::Data<'_>,
    ) -> Result<(), reencode::Error<TooBig>> {
        let index = self.next_data;
        self.next_data += 1;
        if self.init_func.is_some() && self.scan.active.iter().any(|(i, _, _)| *i == index) {
            data.passive(datum.data.iter().copied());
            return Ok(());
        }
        reencode::utils::parse_data(self, data, datum)
    }

    fn start_section(&mut self, start: u32) -> Result<u32, reencode::Error<TooBig>> {
        match self.init_func {
            Some(init) => Ok(init),
            None => self.function_index(start),
        }
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error<TooBig>> {
        // Sections the rewrite needs where the module has none, each added in the gap where
        // it belongs.
        let crosses = |id: SectionId| rank(after, 0) < rank(Some(id), 0) && rank(Some(id), 0) < rank(before, u8::MAX);
        if !self.scan.has_type_section && crosses(SectionId::Type) {
            let mut types = wasm_encoder::TypeSection::new();
            add_types(&mut types);
            module.section(&types);
        }
        if !self.scan.has_import_section && crosses(SectionId::Import) {
            let mut imports = wasm_encoder::ImportSection::new();
            self.add_imports(&mut imports);
            module.section(&imports);
        }
        if let Some(plan) = self.adopt.filter(|p| !p.has_elements && crosses(SectionId::Element)) {
            let mut elements = wasm_encoder::ElementSection::new();
            plan.add_element(&mut elements, self.entry_func());
            module.section(&elements);
        }
        let Some(init) = self.init_func else { return Ok(()) };
        if !self.scan.has_function_section && crosses(SectionId::Function) {
            let mut functions = wasm_encoder::FunctionSection::new();
            functions.function(self.init_type);
            module.section(&functions);
        }
        if !self.scan.has_start_section && crosses(SectionId::Start) {
            module.section(&wasm_encoder::StartSection { function_index: init });
        }
        if !self.scan.has_data_count && crosses(SectionId::DataCount) {
            module.section(&wasm_encoder::DataCountSection { count: self.next_data_count() });
        }
        if !self.scan.has_code_section && crosses(SectionId::Code) {
            let mut code = wasm_encoder::CodeSection::new();
            code.function(&self.init_body()?);
            module.section(&code);
        }
        Ok(())
    }
}

/// Where a section goes in a module (`None` = before the first or after the last).
fn rank(id: Option<SectionId>, none: u8) -> u8 {
    let Some(id) = id else { return none };
    match id {
        SectionId::Custom => 0,
        SectionId::Type => 1,
        SectionId::Import => 2,
        SectionId::Function => 3,
        SectionId::Table => 4,
        SectionId::Memory => 5,
        SectionId::Tag => 6,
        SectionId::Global => 7,
        SectionId::Export => 8,
        SectionId::Start => 9,
        SectionId::Element => 10,
        SectionId::DataCount => 11,
        SectionId::Code => 12,
        SectionId::Data => 13,
    }
}

/// The function types the rewrite adds after the module's own: wait32, wait64, notify,
/// `first_instance` (also the adoption export's), the generated start function (also the
/// `adopted` import's), the adoption entry.
fn add_types(types: &mut wasm_encoder::TypeSection) {
    types.ty().function([ValType::I32, ValType::I32, ValType::I64], [ValType::I32]);
    types.ty().function([ValType::I32, ValType::I64, ValType::I64], [ValType::I32]);
    types.ty().function([ValType::I32, ValType::I32], [ValType::I32]);
    types.ty().function([], [ValType::I32]);
    types.ty().function([], []);
    types.ty().function([ValType::I32], [ValType::I32]);
}

impl Rewriter {
    /// The imports the rewrite adds after the module's own: the converted memory, the
    /// atomics functions, `first_instance`.
    fn add_imports(&self, imports: &mut wasm_encoder::ImportSection) {
        if let Some(Shared { defined: Some(ty), .. }) = self.scan.shared {
            let ty = MemoryType {
                minimum: ty.initial,
                maximum: ty.maximum,
                memory64: false,
                shared: true,
                page_size_log2: ty.page_size_log2,
            };
            imports.import(INTERNAL_MODULE, SHARED_MEMORY_IMPORT, EntityType::Memory(ty));
        }
        if !self.reserved() {
            imports.import(INTERNAL_MODULE, interrupt::MEMORY_IMPORT, EntityType::Memory(interrupt::MEMORY_TYPE));
        }
        for imp in self.index.keys() {
            let ty = self.wait32_type + imp.op as u32;
            imports.import(INTERNAL_MODULE, &imp.name(), EntityType::Function(ty));
        }
        if self.adopt.is_some() {
            imports.import(INTERNAL_MODULE, ADOPTED_IMPORT, EntityType::Function(self.init_type));
        }
        if self.init_func.is_some() {
            imports.import(INTERNAL_MODULE, FIRST_INSTANCE_IMPORT, EntityType::Function(self.first_instance_type));
        }
    }

    /// The function index of the `adopted` import: after the atomics functions.
    fn adopted_import(&self) -> u32 {
        self.scan.num_func_imports + self.index.len() as u32
    }

    /// The function index of the adoption entry, after the helper, the module's own
    /// functions and the generated start function; the adoption export follows it.
    fn entry_func(&self) -> u32 {
        self.scan.num_func_imports
            + self.added_func_imports
            + u32::from(self.helper)
            + self.scan.num_defined_funcs
            + u32::from(self.init_func.is_some())
    }

    /// The number of data segments, for a data count section the module lacked.
    fn next_data_count(&self) -> u32 {
        self.scan.data_segments
    }
}

/// Rewrites a validated module as the opening of this file says; the map says where each
/// function and instruction of the result came from.
pub(crate) fn rewrite(wasm: &[u8]) -> Result<(Vec<u8>, OffsetMap)> {
    // Every other error of the scan is about the bytes.
    let scan = scan(wasm).context("reading module").kind(ErrorKind::BadModule)?;
    let entry_points = super::points::entry_points(&scan.calls);
    // Without the helper first; with it if a body needs compact points.
    let (scan, entry_points) = match rewrite_with(wasm, scan, entry_points, false)? {
        Ok(done) => return Ok(done),
        Err(again) => again,
    };
    match rewrite_with(wasm, scan, entry_points, true)? {
        Ok(done) => Ok(done),
        Err(_) => Err(error(ErrorKind::Other, "the rewrite asked for compact interruption points twice")),
    }
}

/// What a rewrite without the helper gives back for a second try with it.
type Again = (Scan, Vec<bool>);

/// The rewrite, with or without the helper of compact interruption points. Without it, a
/// body too big for inline points gives back what the next try needs.
fn rewrite_with(
    wasm: &[u8],
    scan: Scan,
    entry_points: Vec<bool>,
    helper: bool,
) -> Result<Result<(Vec<u8>, OffsetMap), Again>> {
    let needs_init = !scan.active.is_empty();
    let atomics = scan.atomics.len() as u32;
    let adopt = scan.adopt.plan();
    let added_func_imports = atomics + u32::from(adopt.is_some()) + u32::from(needs_init);
    let index = scan.atomics.iter().enumerate().map(|(i, imp)| (*imp, scan.num_func_imports + i as u32)).collect();
    let init_func =
        needs_init.then(|| scan.num_func_imports + added_func_imports + u32::from(helper) + scan.num_defined_funcs);
    let first_type = scan.num_types;
    let scan_func_imports = scan.num_func_imports;
    let mut r = Rewriter {
        scan,
        added_func_imports,
        helper,
        index,
        wait32_type: first_type,
        first_instance_type: first_type + 3,
        init_type: first_type + 4,
        init_func,
        next_data: 0,
        next_defined_memory: 0,
        map: OffsetMap::new(scan_func_imports, added_func_imports + u32::from(helper)),
        entry_points,
        adopt,
        next_table: 0,
    };
    r.map.set_shared_memory(r.scan.shared.map(|s| s.index));
    let mut module = wasm_encoder::Module::new();
    match r.parse_core_module(&mut module, Parser::new(0), wasm) {
        Ok(()) => Ok(Ok((module.finish(), r.map))),
        Err(reencode::Error::UserError(TooBig { compact: None, .. })) if !helper => Ok(Err((r.scan, r.entry_points))),
        // A valid module the rewrite cannot keep valid: a limit of Wasmtime's.
        Err(reencode::Error::UserError(too_big)) => Err(error(ErrorKind::Limit, too_big.to_string())),
        Err(reencode::Error::ParseError(e)) => {
            Err(anyhow::Error::from(e).context("rewriting the module")).kind(ErrorKind::BadModule)
        }
        Err(e) => Err(error(ErrorKind::BadModule, format!("rewriting the module: {e}"))),
    }
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
        let out = rewrite(&wasm).unwrap().0;
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
    fn every_loop_head_and_the_entry_of_a_recursive_function_get_an_interruption_point() {
        let wasm = wat::parse_str(
            r#"(module (memory $m 1) (data (i32.const 8) "x")
                 (func $f (result i32)
                   (loop $l (br_if $l (i32.const 0)))
                   (if (i32.const 0) (then (drop (call $f))))
                   (i32.load $m (i32.const 8)))
                 (func $leaf (result i32) (i32.const 1)))"#,
        )
        .unwrap();
        let out = rewrite(&wasm).unwrap().0;
        validate(&out);
        let text = wasmprinter::print_bytes(&out).unwrap();
        assert!(text.contains("(import \"wasithreads:internal\" \"interrupt\" (memory (;0;) 1 1 shared))"), "{text}");
        // The module's own memory moved to index 1, after the interrupt page.
        assert!(text.contains("i32.load 1") || text.contains("i32.load $m"), "{text}");
        let points = text.lines().filter(|l| l.trim() == "i32.atomic.load").count();
        assert_eq!(points, 2, "one at $f's entry, one at the loop head, none in the leaf: {text}");
    }

    /// A module shaped like wasm-ld's threaded reactors: named `__pthread_create` and
    /// `__stack_pointer`, table 0 with a function pointer, a data segment to apply once.
    const ADOPTABLE: &str = r#"(module
        (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
        (table 2 2 funcref)
        (memory (export "memory") 1 1 shared)
        (data (i32.const 16) "x")
        (global $__stack_pointer (mut i32) (i32.const 4096))
        (elem (i32.const 1) func $worker)
        (func $worker (param i32) (result i32) (local.get 0))
        (func $__pthread_create (param i32 i32 i32 i32) (result i32) (call $spawn (local.get 3)))
        (func (export "wasi_thread_start") (param i32 i32))
        (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))"#;

    #[test]
    fn a_module_with_pthread_create_by_name_gets_the_adoption_pieces() {
        let out = rewrite(&wat::parse_str(ADOPTABLE).unwrap()).unwrap().0;
        validate(&out);
        let text = wasmprinter::print_bytes(&out).unwrap();
        assert!(text.contains(&format!("(import \"{INTERNAL_MODULE}\" \"{ADOPTED_IMPORT}\" (func")), "{text}");
        assert!(text.contains(&format!("(export \"{ADOPT_EXPORT}\" (func")), "{text}");
        assert!(text.contains("(table (;0;) 3 3 funcref)"), "table 0 grew by the entry's slot: {text}");
        assert!(text.contains("(elem (;1;) (i32.const 2) func"), "the entry is in slot 2: {text}");
        assert!(text.contains("i32.const 2\n") && text.contains("call $__pthread_create"), "{text}");
        assert!(text.contains("global.set $__stack_pointer"), "{text}");
        // The first-instance import stays the last function import, after `adopted`.
        let adopted = text.find(&format!("\"{ADOPTED_IMPORT}\"")).unwrap();
        assert!(adopted < text.find("\"first_instance\"").unwrap(), "{text}");
    }

    #[test]
    fn a_module_without_the_names_or_with_an_imported_table_gets_none() {
        let unnamed = ADOPTABLE.replace("$__pthread_create", "$create");
        let imported = ADOPTABLE.replace("(table 2 2 funcref)", r#"(import "env" "t" (table 2 2 funcref))"#);
        let wrong_type =
            ADOPTABLE.replace("(param i32 i32 i32 i32) (result i32) (call $spawn (local.get 3))", "(param i32)");
        for wat in [unnamed, imported, wrong_type] {
            let out = rewrite(&wat::parse_str(&wat).unwrap()).unwrap().0;
            validate(&out);
            let text = wasmprinter::print_bytes(&out).unwrap();
            assert!(!text.contains(ADOPT_EXPORT) && !text.contains(ADOPTED_IMPORT), "{text}");
        }
    }

    fn validate(wasm: &[u8]) {
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all()).validate_all(wasm).unwrap();
    }

    #[test]
    fn a_defined_shared_memory_becomes_an_import_and_its_data_is_applied_once() {
        let wat = r#"(module
            (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
            (memory $m (export "memory") 1 1 shared)
            (data (i32.const 16) "hello")
            (data $p "passive")
            (func $start (drop (i32.atomic.load (i32.const 16))))
            (start $start)
            (func (export "_start") (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const 0)))))"#;
        let out = rewrite(&wat::parse_str(wat).unwrap()).unwrap().0;
        validate(&out);
        let text = wasmprinter::print_bytes(&out).unwrap();
        assert!(text.contains("(import \"wasithreads:internal\" \"memory\" (memory"), "{text}");
        assert!(text.contains("shared"), "{text}");
        assert!(text.contains("\"first_instance\""), "{text}");
        assert!(!text.contains("(data (;0;) (i32.const 16)"), "the active segment became passive: {text}");
        assert!(text.contains("memory.init"), "{text}");
        assert!(text.contains("call $start"), "the generated start function calls the module's: {text}");
        assert!(text.contains("(export \"memory\" (memory $m))"), "{text}");
    }

    #[test]
    fn waits_on_a_shared_memory_at_index_one_are_rewritten() {
        let wat = r#"(module
            (memory $private 1)
            (memory $shared 1 1 shared)
            (data (memory $private) (i32.const 0) "p")
            (func (export "_start")
              (drop (memory.atomic.wait32 $shared (i32.const 0) (i32.const 0) (i64.const 0)))
              (drop (memory.atomic.notify $shared (i32.const 0) (i32.const 1)))
              (i32.store $private (i32.const 0) (i32.const 1))))"#;
        let out = rewrite(&wat::parse_str(wat).unwrap()).unwrap().0;
        validate(&out);
        let text = wasmprinter::print_bytes(&out).unwrap();
        assert!(!text.contains("memory.atomic.wait32"), "{text}");
        // The shared memory is now imported (index 0) and the private one moved to index 1.
        assert!(text.contains("i32.store 1") || text.contains("i32.store $private"), "{text}");
        assert!(!text.contains("first_instance"), "no data segment of the shared memory: {text}");
    }

    #[test]
    fn two_shared_memories_are_refused_naming_the_second() {
        let wat = r#"(module (memory 1 1 shared) (memory 1 1 shared))"#;
        let err = rewrite(&wat::parse_str(wat).unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("memories 0 and 1"), "{err:#}");
    }
}
