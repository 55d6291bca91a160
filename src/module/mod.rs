//! A module: loading (WAT or binary), validation, the rewrite, compilation, and what a run
//! needs to know of it. Each module carries the linker with every host function it imports.
//!
//! - `mod.rs`: [`Module`] and its loading;
//! - `rewrite.rs`: the rewrite, bytes to bytes, leaving an offset map: waits and notifies
//!   to host calls, a defined shared memory to an import, data segments applied once,
//!   interruption points;
//! - `body.rs`: the scan and the rewrite of each function body;
//! - `points.rs`: which functions get an interruption point at their entry;
//! - `adopt.rs`: what lets host threads become guest threads of an instance;
//! - `shape.rs`: the wasi-threads shape checks of a compiled module;
//! - `cost.rs`: the host memory one instance of the module takes;
//! - `serialized.rs`: serialized modules (Wasmtime's bytes and the offset map).

mod adopt;
mod body;
mod cost;
mod points;
mod rewrite;
mod serialized;
mod shape;

use std::sync::Arc;

use anyhow::Result;
use wasmtime::error::Context as _;
use wasmtime::Linker;

use crate::engine::{Engine, LoadLimits};
use crate::error::{error, ErrorKind, ResultKind};
use crate::group::StoreData;
use crate::trace::OffsetMap;

pub(crate) use adopt::ADOPT_EXPORT;
pub(crate) use shape::{HostImport, MemoryImport};

pub(crate) struct ModuleInner {
    pub(crate) engine: Engine,
    pub(crate) wasmtime: wasmtime::Module,
    /// Every host function the module imports; each run adds its memory.
    pub(crate) linker: Linker<StoreData>,
    pub(crate) memory: Option<MemoryImport>,
    /// Where its interruption points load from.
    pub(crate) interrupt: crate::interrupt::Placement,
    /// `Err(why)` when `wasi_thread_start` is missing or has the wrong type: spawns fail.
    pub(crate) thread_start: Result<(), String>,
    /// `Err(why)` when `_start` is missing or has the wrong type: runs fail to start.
    pub(crate) start: Result<(), String>,
    /// Where the rewritten code came from, for backtraces in the user's offsets.
    pub(crate) offsets: Arc<OffsetMap>,
    /// Function imports each run or instance must get from the host's functions.
    pub(crate) host_imports: Vec<HostImport>,
    /// Whether host threads can become guest threads of an instance (`adopt.rs`): export
    /// calls then run in parallel; else they are serialised on the main instance.
    pub(crate) adopt: bool,
    /// The host memory each instance takes for itself, estimated from above (`cost.rs`).
    pub(crate) instance_bytes: u64,
}

/// A compiled module. Cheap to clone; safe to share and to run many times at once.
#[derive(Clone)]
pub struct Module {
    pub(crate) inner: Arc<ModuleInner>,
}

/// Turns WAT text into binary; binary passes through. The error says which it looked like.
fn to_binary(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if bytes.is_empty() {
        return Err(error(ErrorKind::BadModule, "module bytes are empty"));
    }
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes.into());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        error(
            ErrorKind::BadModule,
            format!(
                "not a WebAssembly module: no `\\0asm` header ({} bytes starting {:02x?}) and not WAT text",
                bytes.len(),
                &bytes[..bytes.len().min(8)]
            ),
        )
    })?;
    Ok(wat::parse_str(text)
        .context("not a WebAssembly binary, and not valid WAT text")
        .kind(ErrorKind::BadModule)?
        .into())
}

/// Refuses a module bigger than the engine loads (see [`crate::EngineConfig`]), reading
/// no more than its section headers and import entries. Malformed bytes pass, for the
/// validation to say what is wrong with them.
fn check_limits(wasm: &[u8], limits: LoadLimits) -> Result<()> {
    if let Some(max) = limits.max_module_bytes {
        if wasm.len() as u64 > max {
            return Err(error(
                ErrorKind::Limit,
                format!(
                    "the module is {} bytes, more than the {max} bytes this engine loads (its max module bytes)",
                    wasm.len()
                ),
            ));
        }
    }
    let Some(max) = limits.max_functions else { return Ok(()) };
    let mut functions = 0u64;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ImportSection(imports)) => {
                for import in imports.into_imports() {
                    let Ok(import) = import else { return Ok(()) };
                    if matches!(import.ty, wasmparser::TypeRef::Func(_) | wasmparser::TypeRef::FuncExact(_)) {
                        functions += 1;
                    }
                }
            }
            Ok(wasmparser::Payload::FunctionSection(defined)) => functions += u64::from(defined.count()),
            // Function bodies come after every section that declares functions.
            Ok(wasmparser::Payload::CodeSectionStart { .. }) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if functions > max {
        return Err(error(
            ErrorKind::Limit,
            format!("the module has {functions} functions, more than the {max} this engine loads (its max functions)"),
        ));
    }
    Ok(())
}

/// Module bytes per thread of a load's pool: a module this small or smaller is validated,
/// rewritten and compiled by one thread.
const LOAD_BYTES_PER_THREAD: usize = 256 << 10;

/// The rayon pool of one load, for the parallel parts of validation, the rewrite
/// (`body.rs`) and Wasmtime's compilation (which runs on the pool it is called from): one
/// thread per [`LOAD_BYTES_PER_THREAD`] of module, at most one per CPU. A pool per load,
/// not rayon's global pool, so that a small load never queues behind a big one's work
/// (rayon runs a pool's queued jobs before one injected from outside), and so that a
/// forked child, in which no thread of the parent's pools exists, can load: the pool's
/// threads are made by the load that uses them, in the process it runs in. Its threads
/// exit when it is dropped, after the load.
fn load_pool(module_bytes: usize) -> Result<rayon::ThreadPool> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = (1 + module_bytes / LOAD_BYTES_PER_THREAD).min(cpus);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("wasithreads-load-{i}"))
        .build()
        .map_err(|e| error(ErrorKind::Limit, format!("starting {threads} threads to compile the module: {e}")))
}

impl Module {
    /// Loads a module from `.wasm` bytes or WAT text: validates it, checks its imports
    /// and exports against what wasithreads provides, rewrites its atomic waits and notifies, compiles.
    pub fn new(engine: &Engine, bytes: &[u8]) -> Result<Module> {
        let wasm = to_binary(bytes)?;
        check_limits(&wasm, engine.load_limits())?;
        let wasmtime = engine.wasmtime();
        let (compiled, offsets, instance_bytes) = load_pool(wasm.len())?.install(|| -> Result<_> {
            wasmtime::Module::validate(wasmtime, &wasm)
                .context("invalid WebAssembly module")
                .kind(ErrorKind::BadModule)?;
            let (rewritten, offsets) = rewrite::rewrite(&wasm)?;
            let instance_bytes = cost::instance_bytes(&rewritten).kind(ErrorKind::BadModule)?;
            // What Wasmtime cannot compile is a module it does not support.
            let compiled = wasmtime::Module::from_binary(wasmtime, &rewritten)
                .context("compiling module")
                .kind(ErrorKind::BadModule)?;
            Ok((compiled, offsets, instance_bytes))
        })?;
        Module::from_compiled(engine, compiled, offsets, instance_bytes)
    }

    /// Loads a module from a `.wasm` or `.wat` file.
    pub fn from_file(engine: &Engine, path: &std::path::Path) -> Result<Module> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display())).kind(ErrorKind::Io)?;
        Module::new(engine, &bytes).map_err(|e| e.context(format!("loading {}", path.display())))
    }

    /// Checks a module as [`Module::new`] does (it compiles it, too) and drops it.
    pub fn validate(engine: &Engine, bytes: &[u8]) -> Result<()> {
        Module::new(engine, bytes).map(drop)
    }

    /// The compiled module (machine code, after the wait rewrite, and the offset map that
    /// leads back to the original module) as bytes, for [`Module::deserialize`] on an
    /// engine with the same settings and library version.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        // Wasmtime fails here only on an internal error (`ErrorKind::Other`).
        Ok(serialized::wrap(&self.inner.offsets, self.inner.instance_bytes, &self.inner.wasmtime.serialize()?))
    }

    /// Loads bytes made by [`Module::serialize`], skipping compilation.
    ///
    /// # Safety
    /// The bytes are executable code that is only checked for its format, version and
    /// engine settings, not for integrity: they must come from [`Module::serialize`] (for
    /// example a cache file the host wrote and nobody else can write).
    pub unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> Result<Module> {
        let (offsets, instance_bytes, compiled) = serialized::unwrap(bytes).kind(ErrorKind::BadModule)?;
        // SAFETY: the caller guarantees the bytes came from `Module::serialize`.
        let module = unsafe { wasmtime::Module::deserialize(engine.wasmtime(), compiled) }
            .context("not a module serialized by this version of wasithreads with these engine settings")
            .kind(ErrorKind::BadModule)?;
        Module::from_compiled(engine, module, offsets, instance_bytes)
    }

    /// Everything a run needs to know about a compiled module, derived from its imports
    /// and exports (so it works the same for compiled and deserialized modules).
    fn from_compiled(
        engine: &Engine,
        module: wasmtime::Module,
        offsets: OffsetMap,
        instance_bytes: u64,
    ) -> Result<Module> {
        let shape = shape::Shape::of(&module)?;
        let mut linker = Linker::new(engine.wasmtime());
        crate::host::add_to_linker(&mut linker, &shape.atomics)?;
        Ok(Module {
            inner: Arc::new(ModuleInner {
                engine: engine.clone(),
                wasmtime: module,
                linker,
                memory: shape.memory,
                interrupt: shape.interrupt,
                thread_start: shape.thread_start,
                start: shape.start,
                offsets: Arc::new(offsets),
                host_imports: shape.host_imports,
                adopt: shape.adopt,
                instance_bytes,
            }),
        })
    }

    /// True when this module was loaded by `engine` (or a clone of it).
    pub fn belongs_to(&self, engine: &Engine) -> bool {
        self.inner.engine.same_as(engine)
    }

    /// The underlying Wasmtime module (after the wait rewrite).
    pub fn wasmtime(&self) -> &wasmtime::Module {
        &self.inner.wasmtime
    }
}
