//! Long-lived instances (plugins): a module instantiated once, `_initialize` run, then
//! its exports called from any host thread, concurrently, while the guest's own threads
//! go on in the background; every limit, the timeout, stdio, preopens, callbacks and host
//! functions of the [`RunConfig`] apply for the instance's whole life. The proposal's
//! rule holds: one thread's trap or `proc_exit`, the timeout or a cancel ends every
//! thread, and every later call fails at once with that first exit.
//!
//! - `mod.rs`: [`Instance`]: creation, calls, the end;
//! - `worker.rs`: the guest threads calls run on (host threads adopted as guest threads);
//! - `stack.rs`: the native stack a calling host thread needs;
//! - `deadline.rs`: the call timeout.

mod deadline;
mod stack;
mod typed;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use parking_lot::Mutex;
use wasmtime::{ExternType, ValRaw};

use crate::config::RunConfig;
use crate::error::{error, ErrorKind, ResultKind};
use crate::exit::RunExit;
use crate::hostfunc::{check_vals, scratch, ArgsOf, Caller, CallerMemory, FuncType, Val};
use crate::launch::{launch, Launch};
use crate::module::Module;
use crate::run::Run;
pub use typed::TypedExport;
use worker::{Callee, Main, NoWorker, Worker, Workers};

/// The error of a call (or of [`Instance::new`]) because the instance ended; its
/// [`ErrorKind`] is [`ErrorKind::Ended`]. Holds the instance's first exit.
#[derive(Debug, Clone)]
pub struct InstanceEnded(pub RunExit);

impl std::fmt::Display for InstanceEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.0;
        write!(f, "the instance ended: ")?;
        match e.kind {
            crate::ExitKind::Code => write!(f, "thread {} exited with code {}", e.tid, e.code),
            crate::ExitKind::Trap => write!(f, "thread {} trapped: {}", e.tid, e.message.as_deref().unwrap_or("")),
            crate::ExitKind::Timeout => write!(f, "its timeout elapsed"),
            crate::ExitKind::Cancelled => write!(f, "it was cancelled or closed"),
        }
    }
}
impl std::error::Error for InstanceEnded {}

impl InstanceEnded {
    /// The instance's end in an error of a call or of [`Instance::new`], if that is what
    /// it is.
    pub fn of(error: &anyhow::Error) -> Option<&InstanceEnded> {
        crate::error::find::<InstanceEnded>(error)
    }
}

fn ended(exit: RunExit) -> anyhow::Error {
    error(ErrorKind::Ended, InstanceEnded(exit))
}

/// How export calls of an instance run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallMode {
    /// Each calling host thread runs on a guest thread of its own (its own stack, TLS and
    /// `pthread_self`), so calls from different host threads run in parallel. A module
    /// gets it when it has a shared memory and wasi-libc's `__pthread_create` by name in
    /// its name section (any C, C++ or Rust module built for `wasm32-wasip1-threads` that
    /// is not stripped of names).
    Parallel,
    /// Calls run one at a time on the main thread's instance (other callers wait).
    Serial,
}

/// A module instantiated for calls. All methods may be called from any thread, at once.
/// Dropping it closes it (see [`Instance::close`]).
pub struct Instance {
    /// The instance's life: its group, supervision (timeout), end and callbacks' gate.
    run: Run,
    main: Mutex<Main>,
    workers: Workers,
    mode: CallMode,
    /// The functions the module exports that calls can reach, with their types.
    exports: HashMap<String, Export>,
    /// The engine's largest wasm stack, for the calling thread's stack check.
    wasm_stack: usize,
    /// The config's call timeout, if it has one.
    deadlines: Option<deadline::CallDeadlines>,
}

/// An export calls can reach: its type and its number among them.
struct Export {
    ty: FuncType,
    index: usize,
}

/// The exports of `module` callable with [`Val`]s: functions of number types, not the
/// library's own.
fn callable_exports(module: &Module) -> HashMap<String, Export> {
    let mut out = HashMap::new();
    for e in module.inner.wasmtime.exports() {
        let ExternType::Func(f) = e.ty() else { continue };
        if e.name().starts_with("wasithreads:") {
            continue;
        }
        if let Some(ty) = FuncType::of(&f) {
            let index = out.len();
            out.insert(e.name().to_string(), Export { ty, index });
        }
    }
    out
}

impl Instance {
    /// Instantiates `module` on the calling thread as the instance's main thread (tid 0),
    /// runs its `_initialize` export if it has one (a command's `_start` is not run),
    /// and starts the supervision of the config's timeout. Fails with the reason when
    /// the instance cannot be made, or with an [`InstanceEnded`] error (kind
    /// [`ErrorKind::Ended`]) when its start function or `_initialize` trapped, exited or
    /// ran past the timeout.
    pub fn new(module: &Module, config: &RunConfig) -> Result<Instance> {
        let wasm_stack = module.inner.engine.max_wasm_stack();
        stack::check(wasm_stack)?;
        let Launch { group, mut store, gate } = launch(module, config)?;
        let run = Run::supervised(group.clone(), gate, config.timeout);
        let made = group.instantiate(&mut store).and_then(|instance| {
            if let Some(init) = instance.get_func(&mut store, "_initialize") {
                init.typed::<(), ()>(&store)?.call(&mut store, ())?;
            }
            Ok(instance)
        });
        let instance = match made {
            Ok(i) => i,
            Err(e) => {
                let exit = group.call_failed(0, &mut store, &e);
                // The main thread is done with wasm: the end need not wait for it.
                group.main_idle();
                drop(run);
                return Err(ended(exit).context("initialising the instance"));
            }
        };
        group.main_idle();
        let mode = if module.inner.adopt && group.memory.is_some() { CallMode::Parallel } else { CallMode::Serial };
        Ok(Instance {
            run,
            main: Mutex::new(Main::new(store, instance)),
            workers: Workers::default(),
            mode,
            exports: callable_exports(module),
            wasm_stack,
            deadlines: config.call_timeout.map(deadline::CallDeadlines::new),
        })
    }

    /// How calls run (see [`CallMode`]).
    pub fn call_mode(&self) -> CallMode {
        self.mode
    }

    /// The type of export `name`, if calls can reach it.
    pub fn export_type(&self, name: &str) -> Option<&FuncType> {
        self.exports.get(name).map(|e| &e.ty)
    }

    /// The exports calls can reach (functions whose parameters and results are all
    /// numbers), with their types, in the module's order.
    pub fn exports(&self) -> Vec<(&str, &FuncType)> {
        let mut all: Vec<(&str, &Export)> = self.exports.iter().map(|(n, e)| (n.as_str(), e)).collect();
        all.sort_by_key(|(_, e)| e.index);
        all.into_iter().map(|(n, e)| (n, &e.ty)).collect()
    }

    /// Calls export `name` with `args` on a guest thread of the calling host thread's
    /// (see [`CallMode`]) and returns its results.
    pub fn call(&self, name: &str, args: &[Val]) -> Result<Vec<Val>> {
        let export = self.checked(name, args)?;
        let mut results: Vec<Val> = export.ty.results.iter().map(|&k| Val::zero(k)).collect();
        self.call_into(name, args, &mut results)?;
        Ok(results)
    }

    /// Checks a call of `name` with `args` against the export's type.
    fn checked(&self, name: &str, args: &[Val]) -> Result<&Export> {
        let Some(export) = self.exports.get(name) else {
            return Err(error(ErrorKind::Misuse, format!("the module has no callable export `{name}`")));
        };
        check_vals(ArgsOf(name), &export.ty.params, args).kind(ErrorKind::Misuse)?;
        Ok(export)
    }

    /// [`Instance::call`] writing the results to `results`, which must have the export's
    /// result count (their values are overwritten).
    ///
    /// Errors: misuse (no such export, wrong argument count or types, wrong result
    /// count), which leaves the instance as it was; a thread limit or the calling
    /// thread's stack (kind [`ErrorKind::Limit`]), same; or [`InstanceEnded`] (kind
    /// [`ErrorKind::Ended`]) when the instance ended, in this call (a trap or `proc_exit`
    /// here ends it) or before.
    pub fn call_into(&self, name: &str, args: &[Val], results: &mut [Val]) -> Result<()> {
        let export = self.checked(name, args)?;
        if results.len() != export.ty.results.len() {
            return Err(error(
                ErrorKind::Misuse,
                format!("`{name}` gives {} results, room for {} was given", export.ty.results.len(), results.len()),
            ));
        }
        self.call_export(export, name, args, results)
    }

    /// Calls `export` (named `name`) with `args` of its parameter types, writing its
    /// results to `results`, which holds as many as it gives.
    fn call_export(&self, export: &Export, name: &str, args: &[Val], results: &mut [Val]) -> Result<()> {
        stack::check(self.wasm_stack)?;
        let group = self.run.group();
        let _watch = match &self.deadlines {
            Some(d) => Some(d.watch(group).context("starting the call timeout's thread").kind(ErrorKind::Limit)?),
            None => None,
        };
        if self.mode == CallMode::Serial {
            if self.run.in_own_callback() {
                // The main instance is busy with the call that called this host function.
                return Err(error(
                    ErrorKind::Misuse,
                    format!(
                        "`{name}` called from a host function or callback of a serial instance, whose one thread \
                         is busy with the call that called it"
                    ),
                ));
            }
            let mut main = self.main.lock();
            return call_on(group, 0, &mut main, export, name, args, results).map_err(ended);
        }
        let mut worker = match self.workers.take(group) {
            Some(w) => w,
            None => match worker::adopt(group, &self.main) {
                Ok(w) => {
                    self.workers.made_one();
                    w
                }
                Err(NoWorker::Ended(exit)) => return Err(ended(exit)),
                Err(NoWorker::Failed(e)) => return Err(e),
                Err(NoWorker::Refused(e)) if self.workers.none_made() => return Err(e),
                Err(NoWorker::Refused(_)) => self.workers.take_any(group).map_err(ended)?,
            },
        };
        let Worker { callee, tid, .. } = &mut worker;
        call_on(group, *tid, callee, export, name, args, results).map_err(ended)?;
        self.workers.put(group, worker);
        Ok(())
    }

    /// The shared memory's base address and current size in bytes, for hosts that read
    /// and write it in place; (null, 0) for a module without a shared memory (use
    /// [`Instance::read`] and [`Instance::write`]). The base never moves while the
    /// instance lives (a shared memory grows in place); the size grows when the guest
    /// grows the memory. Guest threads read and write it concurrently: ordering the
    /// host's accesses with theirs (atomics, a call that returns) is the host's business.
    pub fn memory(&self) -> (*mut u8, usize) {
        match &self.run.group().memory {
            Some(m) => (std::cell::UnsafeCell::raw_get(m.data().as_ptr()), m.data().len()),
            None => (std::ptr::null_mut(), 0),
        }
    }

    /// Copies `buf.len()` bytes of guest memory at `offset` into `buf`. Errors (kind
    /// [`ErrorKind::Misuse`]) when the range is outside the memory's current size.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.with_memory(|memory| memory.read(offset, buf))
    }

    /// Copies `data` into guest memory at `offset`. Errors (kind [`ErrorKind::Misuse`])
    /// when the range is outside the memory's current size.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.with_memory(|memory| memory.write(offset, data))
    }

    /// Runs `f` with a view of the guest memory: the shared one, or the main instance's
    /// own memory export (under the main store's lock).
    fn with_memory(&self, f: impl FnOnce(&mut Caller<'_>) -> Result<()>) -> Result<()> {
        let group = self.run.group();
        let signal = &group.teardown.signal;
        if let Some(m) = &group.memory {
            let mut view = Caller { tid: -1, memory: CallerMemory::Shared(m.data()), signal };
            return f(&mut view).kind(ErrorKind::Misuse);
        }
        let mut main = self.main.lock();
        let Main { store, instance, .. } = &mut *main;
        let memory = match instance.get_memory(&mut *store, "memory") {
            Some(m) => CallerMemory::Unshared(m.data_mut(&mut *store)),
            None => CallerMemory::None,
        };
        f(&mut Caller { tid: -1, memory, signal }).kind(ErrorKind::Misuse)
    }

    /// Guest threads serving calls that are idle now.
    pub fn idle_workers(&self) -> usize {
        self.workers.idle()
    }

    /// Ends the instance with [`crate::ExitKind::Cancelled`] unless it already ended;
    /// calls in flight return [`InstanceEnded`] within milliseconds. Returns at once.
    pub fn cancel(&self) {
        self.run.cancel();
    }

    /// The first exit if the instance ended and all its threads are joined, else `None`.
    pub fn try_wait(&self) -> Option<RunExit> {
        self.run.try_wait()
    }

    /// Ends the instance if it still lives (a cancel), stops and joins every thread of it,
    /// and gives how it ended: its first exit ([`crate::ExitKind::Cancelled`] if nothing
    /// ended it before). No callback of it starts afterwards. Idempotent.
    pub fn close(&self) -> RunExit {
        if self.run.try_wait().is_none() {
            self.run.cancel();
        }
        let exit = self.run.wait();
        self.workers.clear();
        exit
    }

    /// True when the calling thread is inside one of this instance's callbacks.
    pub fn in_own_callback(&self) -> bool {
        self.run.in_own_callback()
    }
}

/// Calls `export` (named `name`) on thread `tid`'s `callee`, with `args` already checked
/// against its type; on failure ends the instance (a trap or `proc_exit` of this call)
/// and gives its first exit.
fn call_on(
    group: &Arc<crate::group::Group>,
    tid: i32,
    callee: &mut Callee,
    export: &Export,
    name: &str,
    args: &[Val],
    results: &mut [Val],
) -> std::result::Result<(), RunExit> {
    let Some(func) = callee.func(export.index, name) else {
        return Err(group.ended_exit());
    };
    group.enter_call(tid)?;
    let outcome = scratch(args.len().max(results.len()), ValRaw::i32(0), |buf| {
        for (slot, &a) in buf.iter_mut().zip(args) {
            *slot = a.to_raw();
        }
        // SAFETY: `func` is an export of `callee`'s instance, in `callee.store`; `buf` holds
        // the arguments, each of the type the export declares (checked by `Instance::checked`
        // or `Instance::typed` against the module's own export type), and has room for
        // every result; they are numbers only (no references); the call is synchronous.
        match unsafe { func.call_unchecked(&mut callee.store, buf as *mut [ValRaw]) } {
            // A call still running when the instance's end was decided returns that end,
            // even if its wasm reached no interruption point after it.
            Ok(()) if group.teardown.signal.is_ending() => Err(group.ended_exit()),
            Ok(()) => {
                for ((out, &kind), v) in results.iter_mut().zip(&export.ty.results).zip(buf.iter()) {
                    *out = Val::from_raw(kind, v);
                }
                Ok(())
            }
            Err(e) => Err(group.call_failed(tid, &mut callee.store, &e)),
        }
    });
    group.leave_call(tid);
    outcome
}
