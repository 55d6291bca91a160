//! Host functions: imports a host defines for its guests ([`HostFunc`]), the values they
//! take and give ([`Val`]), and what a call of one sees of its caller ([`Caller`]);
//! typed ones from closures in `typed.rs`.
//!
//! A host function is linked into every instance of a run or an [`Instance`](crate::Instance):
//! the main thread's, each spawned thread's, each call worker's. It runs on the guest
//! thread that called it, concurrently with its other calls.

use std::cell::UnsafeCell;
use std::fmt;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::wait::Signal;

mod typed;
pub use typed::{HostResults, IntoHostFunc, WasmList, WasmTy, WithCaller, WithoutCaller};

/// The type of a WebAssembly value a host function or export takes or gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValKind {
    I32,
    I64,
    F32,
    F64,
}

impl fmt::Display for ValKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValKind::I32 => "i32",
            ValKind::I64 => "i64",
            ValKind::F32 => "f32",
            ValKind::F64 => "f64",
        })
    }
}

/// A WebAssembly value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
}

impl Val {
    pub fn kind(&self) -> ValKind {
        match self {
            Val::I32(_) => ValKind::I32,
            Val::I64(_) => ValKind::I64,
            Val::F32(_) => ValKind::F32,
            Val::F64(_) => ValKind::F64,
        }
    }

    /// The value as Wasmtime passes it in raw calls.
    pub(crate) fn to_raw(self) -> wasmtime::ValRaw {
        match self {
            Val::I32(x) => wasmtime::ValRaw::i32(x),
            Val::I64(x) => wasmtime::ValRaw::i64(x),
            Val::F32(x) => wasmtime::ValRaw::f32(x.to_bits()),
            Val::F64(x) => wasmtime::ValRaw::f64(x.to_bits()),
        }
    }

    /// The value of type `kind` in the raw `v`.
    pub(crate) fn from_raw(kind: ValKind, v: &wasmtime::ValRaw) -> Val {
        match kind {
            ValKind::I32 => Val::I32(v.get_i32()),
            ValKind::I64 => Val::I64(v.get_i64()),
            ValKind::F32 => Val::F32(f32::from_bits(v.get_f32())),
            ValKind::F64 => Val::F64(f64::from_bits(v.get_f64())),
        }
    }

    /// The zero of `kind`.
    pub fn zero(kind: ValKind) -> Val {
        match kind {
            ValKind::I32 => Val::I32(0),
            ValKind::I64 => Val::I64(0),
            ValKind::F32 => Val::F32(0.0),
            ValKind::F64 => Val::F64(0.0),
        }
    }
}

/// Runs `f` on `n` copies of `zero`: on the stack for the few values calls pass, so a
/// call allocates nothing.
pub(crate) fn scratch<T: Copy, R>(n: usize, zero: T, f: impl FnOnce(&mut [T]) -> R) -> R {
    const INLINE: usize = 16;
    if n <= INLINE {
        f(&mut [zero; INLINE][..n])
    } else {
        f(&mut vec![zero; n])
    }
}

/// Parameter and result types of a function.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FuncType {
    pub params: Vec<ValKind>,
    pub results: Vec<ValKind>,
}

impl FuncType {
    /// The type of a Wasmtime function, if all its parameters and results are numbers
    /// (what host functions and export calls can pass).
    pub(crate) fn of(f: &wasmtime::FuncType) -> Option<FuncType> {
        let kind = |t: wasmtime::ValType| match t {
            wasmtime::ValType::I32 => Some(ValKind::I32),
            wasmtime::ValType::I64 => Some(ValKind::I64),
            wasmtime::ValType::F32 => Some(ValKind::F32),
            wasmtime::ValType::F64 => Some(ValKind::F64),
            _ => None,
        };
        Some(FuncType {
            params: f.params().map(kind).collect::<Option<_>>()?,
            results: f.results().map(kind).collect::<Option<_>>()?,
        })
    }
}

impl fmt::Display for FuncType {
    /// `(i32, i64) -> f32`, `() -> ()`, `(i32) -> (i32, i32)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[ValKind]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        match self.results.len() {
            1 => write!(f, "({}) -> {}", list(&self.params), self.results[0]),
            _ => write!(f, "({}) -> ({})", list(&self.params), list(&self.results)),
        }
    }
}

/// Checks that `vals` match `kinds` one for one; `what` names them in the error.
pub(crate) fn check_vals(what: impl fmt::Display, kinds: &[ValKind], vals: &[Val]) -> Result<()> {
    if kinds.len() != vals.len() {
        bail!("{what}: {} given, {} expected ({})", vals.len(), kinds.len(), list_kinds(kinds));
    }
    if let Some((i, (k, v))) = kinds.iter().zip(vals).enumerate().find(|(_, (k, v))| v.kind() != **k) {
        bail!("{what}: value {i} is an {}, the function takes an {k} there", v.kind());
    }
    Ok(())
}

/// "arguments of `name`", formatted only when an error says it.
pub(crate) struct ArgsOf<'a>(pub(crate) &'a str);

impl fmt::Display for ArgsOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arguments of `{}`", self.0)
    }
}

fn list_kinds(kinds: &[ValKind]) -> String {
    format!("({})", kinds.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
}

/// What a host function does: reads `args` (typed as declared), writes every one of
/// `results` (they come zeroed, typed as declared), or returns an error, which traps the
/// calling guest thread and so ends its run or instance with that message.
pub type HostCallback = Arc<dyn Fn(&mut Caller<'_>, &[Val], &mut [Val]) -> Result<()> + Send + Sync>;

/// A host function a guest imports as `module::name`.
#[derive(Clone)]
pub struct HostFunc {
    pub module: String,
    pub name: String,
    pub ty: FuncType,
    pub callback: HostCallback,
}

impl HostFunc {
    pub fn new(
        module: &str,
        name: &str,
        params: &[ValKind],
        results: &[ValKind],
        callback: impl Fn(&mut Caller<'_>, &[Val], &mut [Val]) -> Result<()> + Send + Sync + 'static,
    ) -> HostFunc {
        HostFunc {
            module: module.into(),
            name: name.into(),
            ty: FuncType { params: params.to_vec(), results: results.to_vec() },
            callback: Arc::new(callback),
        }
    }
}

impl fmt::Debug for HostFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostFunc({}::{} {})", self.module, self.name, self.ty)
    }
}

/// The guest memory a caller sees.
pub(crate) enum CallerMemory<'a> {
    /// The run's shared memory: other threads use it at the same time.
    Shared(&'a [UnsafeCell<u8>]),
    /// A module without a shared memory: its one thread's own.
    Unshared(&'a mut [u8]),
    None,
}

/// The guest thread that called a host function.
pub struct Caller<'a> {
    pub(crate) tid: i32,
    pub(crate) memory: CallerMemory<'a>,
    pub(crate) signal: &'a Signal,
}

impl Caller<'_> {
    /// The calling thread's id: 0 for the main thread, > 0 for spawned threads and call
    /// workers.
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// The guest memory's base address and current size in bytes ((null, 0) without a
    /// memory). A shared memory's base never moves while its run or instance lives, and
    /// other guest threads read and write it concurrently; an unshared memory's base is
    /// valid only during this call.
    pub fn memory(&self) -> (*mut u8, usize) {
        match &self.memory {
            CallerMemory::Shared(m) => (UnsafeCell::raw_get(m.as_ptr()), m.len()),
            CallerMemory::Unshared(m) => (m.as_ptr().cast_mut(), m.len()),
            CallerMemory::None => (std::ptr::null_mut(), 0),
        }
    }

    /// Copies `buf.len()` bytes of guest memory at `offset` into `buf`; an error when the
    /// range is not inside the memory.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let (base, len) = self.memory();
        let start = in_bounds(offset, buf.len(), len)?;
        // SAFETY: `start..start + buf.len()` is inside the memory (checked above), which
        // lives for this call; guest threads may write it concurrently (a shared memory),
        // which makes the bytes read unspecified, never the copy unsound for plain bytes.
        unsafe { std::ptr::copy(base.add(start), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into guest memory at `offset`; an error when the range is not inside
    /// the memory.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let (base, len) = self.memory();
        let start = in_bounds(offset, data.len(), len)?;
        // SAFETY: in bounds (checked above) of a memory that lives for this call; a shared
        // memory's bytes are `UnsafeCell`s that every thread may write.
        unsafe { std::ptr::copy(data.as_ptr(), base.add(start), data.len()) };
        Ok(())
    }

    /// True once the caller's run or instance is ending: a host function that loops or
    /// blocks should return soon (any error will do; the thread is being stopped).
    pub fn is_ending(&self) -> bool {
        self.signal.is_ending()
    }

    /// A descriptor that becomes readable when the caller's run or instance ends, for a
    /// host function that blocks in `poll`/`epoll` on its own descriptors: poll this one
    /// too. Owned by the library: do not read, close or change it. `None` only when the
    /// OS refused an eventfd.
    pub fn end_fd(&self) -> Option<BorrowedFd<'_>> {
        self.signal.end_fd().ok()
    }
}

/// `offset..offset + n` as a start index into a memory of `len` bytes, if it fits.
pub(crate) fn in_bounds(offset: u64, n: usize, len: usize) -> Result<usize> {
    let fits = usize::try_from(offset).ok().filter(|&s| s.checked_add(n).is_some_and(|end| end <= len));
    match fits {
        Some(start) => Ok(start),
        None => {
            bail!(
                "guest memory range {offset}..{} is outside the memory of {len} bytes",
                u128::from(offset) + n as u128
            )
        }
    }
}
