//! Loading a module: WAT or binary, validation, the wasi-threads shape checks, the wait
//! rewrite, compilation.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use wasmtime::error::Context as _;
use wasmtime::{ExternType, Linker, MemoryType, ValType};

use crate::engine::Engine;
use crate::rewrite::{self, ATOMICS_MODULE, AtomicImport};
use crate::run::StoreData;
use crate::wasi::{P1_FUNCTIONS, P1_MODULE};

/// The export that runs a spawned thread, fixed by the wasi-threads proposal.
pub(crate) const THREAD_START: &str = "wasi_thread_start";

/// The memory a module imports; every run creates one and all its threads share it.
#[derive(Clone, Debug)]
pub(crate) struct MemoryImport {
    pub module: String,
    pub name: String,
    pub ty: MemoryType,
}

pub(crate) struct ModuleInner {
    pub(crate) engine: Engine,
    pub(crate) wasmtime: wasmtime::Module,
    /// The engine's linker plus this module's atomics functions; each run adds its memory.
    pub(crate) linker: Linker<StoreData>,
    pub(crate) memory: Option<MemoryImport>,
    /// `Err(why)` when `wasi_thread_start` is missing or has the wrong type: spawns fail.
    pub(crate) thread_start: Result<(), String>,
    /// `Err(why)` when `_start` is missing or has the wrong type: runs fail to start.
    pub(crate) start: Result<(), String>,
}

/// A compiled module. Cheap to clone; safe to share and to run many times at once.
#[derive(Clone)]
pub struct Module {
    pub(crate) inner: Arc<ModuleInner>,
}

fn is_func(ty: &ExternType, params: &[ValType], results: &[ValType]) -> bool {
    let ExternType::Func(f) = ty else { return false };
    let same = |a: &mut dyn ExactSizeIterator<Item = ValType>, b: &[ValType]| {
        a.len() == b.len() && a.zip(b).all(|(x, y)| ValType::eq(&x, y))
    };
    same(&mut f.params(), params) && same(&mut f.results(), results)
}

/// Turns WAT text into binary; binary passes through. The error says which it looked like.
fn to_binary(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if bytes.is_empty() {
        bail!("module bytes are empty");
    }
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes.into());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        anyhow!(
            "not a WebAssembly module: no `\\0asm` header ({} bytes starting {:02x?}) and not WAT text",
            bytes.len(),
            &bytes[..bytes.len().min(8)]
        )
    })?;
    Ok(wat::parse_str(text).context("not a WebAssembly binary, and not valid WAT text")?.into())
}

impl Module {
    /// Loads a module from `.wasm` bytes or WAT text: validates it, checks its imports
    /// and exports against what wasithreads provides, rewrites its atomic waits and notifies, compiles.
    pub fn new(engine: &Engine, bytes: &[u8]) -> Result<Module> {
        let wasm = to_binary(bytes)?;
        let wt = &engine.inner.wasmtime;
        wasmtime::Module::validate(wt, &wasm).context("invalid WebAssembly module")?;
        let compiled = match rewrite::rewrite_atomics(&wasm)? {
            Some(rewritten) => wasmtime::Module::from_binary(wt, &rewritten),
            None => wasmtime::Module::from_binary(wt, &wasm),
        };
        Module::from_compiled(engine, compiled.context("compiling module")?)
    }

    /// Loads a module from a `.wasm` or `.wat` file.
    pub fn from_file(engine: &Engine, path: &std::path::Path) -> Result<Module> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Module::new(engine, &bytes).map_err(|e| e.context(format!("loading {}", path.display())))
    }

    /// Checks a module as [`Module::new`] does (it compiles it, too) and drops it.
    pub fn validate(engine: &Engine, bytes: &[u8]) -> Result<()> {
        Module::new(engine, bytes).map(drop)
    }

    /// The compiled module (machine code, after the wait rewrite) as bytes, for
    /// [`Module::deserialize`] on an engine with the same settings and library version.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        Ok(self.inner.wasmtime.serialize()?)
    }

    /// Loads bytes made by [`Module::serialize`], skipping compilation.
    ///
    /// # Safety
    /// The bytes are executable code that is only checked for its format, version and
    /// engine settings, not for integrity: they must come from [`Module::serialize`] (for
    /// example a cache file the host wrote and nobody else can write).
    pub unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> Result<Module> {
        // SAFETY: the caller guarantees the bytes came from `Module::serialize`.
        let module = unsafe { wasmtime::Module::deserialize(&engine.inner.wasmtime, bytes) }
            .context("not a module serialized by this version of wasithreads with these engine settings")?;
        Module::from_compiled(engine, module)
    }

    /// Everything a run needs to know about a compiled module, derived from its imports
    /// and exports (so it works the same for compiled and deserialized modules).
    fn from_compiled(engine: &Engine, module: wasmtime::Module) -> Result<Module> {
        let (memory, spawns, atomics) = check_imports(&module)?;
        if spawns && !memory.as_ref().is_some_and(|m| m.ty.is_shared()) {
            bail!(
                "the module imports wasi::thread-spawn but does not import a shared memory: \
                 wasi-threads modules must import their memory, declared `shared`"
            );
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
        let mut linker = engine.inner.linker.clone();
        for imp in atomics {
            crate::run::wait::define(&mut linker, imp)?;
        }
        Ok(Module {
            inner: Arc::new(ModuleInner {
                engine: engine.clone(),
                wasmtime: module,
                linker,
                memory,
                thread_start,
                start,
            }),
        })
    }

    /// The underlying Wasmtime module (after the wait rewrite).
    pub fn wasmtime(&self) -> &wasmtime::Module {
        &self.inner.wasmtime
    }
}

/// Checks every import is one we provide. Returns the memory import, whether the module
/// imports `wasi::thread-spawn`, and the atomics functions the rewrite added.
fn check_imports(module: &wasmtime::Module) -> Result<(Option<MemoryImport>, bool, Vec<AtomicImport>)> {
    let mut memory = None;
    let mut spawns = false;
    let mut atomics = Vec::new();
    for imp in module.imports() {
        let (m, n) = (imp.module(), imp.name());
        match imp.ty() {
            ExternType::Memory(ty) => {
                if memory.is_some() {
                    bail!("the module imports more than one memory (`{m}::{n}` is the second)");
                }
                memory = Some(MemoryImport { module: m.into(), name: n.into(), ty });
            }
            ty @ ExternType::Func(_) => {
                if m == "wasi" && n == "thread-spawn" {
                    if !is_func(&ty, &[ValType::I32], &[ValType::I32]) {
                        bail!("import `wasi::thread-spawn` must have type (i32) -> i32");
                    }
                    spawns = true;
                } else if m == ATOMICS_MODULE {
                    atomics.push(AtomicImport::parse(n).ok_or_else(|| anyhow!("unknown import `{m}::{n}`"))?);
                } else if !(m == P1_MODULE && P1_FUNCTIONS.contains(&n)) {
                    bail!(
                        "unknown import `{m}::{n}`: wasithreads provides `{P1_MODULE}` functions, \
                         `wasi::thread-spawn` and one memory"
                    );
                }
            }
            _ => bail!("unsupported import `{m}::{n}`: only functions and one memory can be imported"),
        }
    }
    Ok((memory, spawns, atomics))
}
