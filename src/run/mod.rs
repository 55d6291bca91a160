//! A run: the group of guest threads that execute one module instance's `_start`, and the
//! machinery that ends all of them together.
//!
//! Ending a run ("teardown") sets `terminating`, then repeatedly *kicks* every thread until
//! all have exited: the engine epoch is bumped (busy wasm hits its deadline callback), every
//! address a thread waits on is notified, sleeping WASI calls are woken through the condvar
//! and stdin reads through an eventfd. Each woken thread sees `terminating` and leaves with
//! a [`Terminated`] error. Kicks repeat until the threads are gone, which closes the window
//! between a thread checking `terminating` and starting to block.

mod spawn;
mod thread;
pub(crate) mod wait;

pub(crate) use spawn::add_to_linker as add_spawn_to_linker;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use wasmtime::error::Context as _;
use parking_lot::{Condvar, Mutex};
use wasmtime::{InstancePre, MemoryType, SharedMemory, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::config::RunConfig;
use crate::exit::{ExitKind, RunExit, ThreadExitCallback, ThreadStartCallback};
use crate::module::{MemoryImport, Module};
use crate::stdio::Streams;
use crate::wasi::Stdio;

/// The error a thread leaves with when another thread, or the host, ended its run.
#[derive(Debug)]
pub(crate) struct Terminated;

impl std::fmt::Display for Terminated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("thread terminated because its run ended")
    }
}
impl std::error::Error for Terminated {}

/// Per-store data: which run and which thread a store belongs to.
pub(crate) struct StoreData {
    pub(crate) run: Arc<RunShared>,
    pub(crate) tid: i32,
    /// Caps an unshared memory's growth (shared memories are capped by their type).
    limits: wasmtime::StoreLimits,
}

#[derive(Default)]
pub(crate) struct State {
    /// The first event that ended the run.
    pub(crate) outcome: Option<RunExit>,
    /// Threads that exist (main included) and have not finished their exit callback.
    pub(crate) live: usize,
    /// Spawned threads that have not stopped running wasm, for the thread limit.
    pub(crate) spawned: u32,
    /// Someone (a waiter or the background supervisor) is running `supervise`.
    pub(crate) supervising: bool,
    /// The outcome, set once every thread has been joined.
    pub(crate) result: Option<RunExit>,
}

/// Everything the threads of one run share.
pub(crate) struct RunShared {
    pub(crate) module: Module,
    /// Set once, before any thread starts.
    pub(crate) pre: OnceLock<InstancePre<StoreData>>,
    /// The imported shared memory, if the module imports one.
    pub(crate) memory: Option<SharedMemory>,
    /// One WASI context for all threads. Never held across a blocking wait.
    pub(crate) wasi: Mutex<WasiP1Ctx>,
    pub(crate) stdio: Stdio,
    pub(crate) max_threads: u32,
    pub(crate) max_memory: Option<u64>,
    pub(crate) on_thread_exit: Option<ThreadExitCallback>,
    pub(crate) on_thread_start: Option<ThreadStartCallback>,
    pub(crate) terminating: AtomicBool,
    pub(crate) state: Mutex<State>,
    /// Signalled on every state change and on every kick.
    pub(crate) cond: Condvar,
    /// The host address each thread is waiting on in an atomic wait, by tid.
    pub(crate) waiters: Mutex<HashMap<i32, usize>>,
    pub(crate) next_tid: AtomicI32,
    /// Becomes readable when the run ends; created on the first blocking stdin read.
    pub(crate) wake_fd: OnceLock<OwnedFd>,
    /// One per thread started: set when that thread is completely done with the run.
    pub(crate) handles: Mutex<Vec<Arc<crate::pool::Done>>>,
}

impl RunShared {
    pub(crate) fn pre(&self) -> &InstancePre<StoreData> {
        self.pre.get().expect("the instance-pre is set before any thread starts")
    }

    pub(crate) fn terminating(&self) -> bool {
        self.terminating.load(Ordering::SeqCst)
    }

    /// Records how the run ended (the first call wins) and starts stopping every thread.
    pub(crate) fn finish(&self, exit: RunExit) {
        {
            let mut st = self.state.lock();
            if st.outcome.is_none() {
                st.outcome = Some(exit);
            }
            self.terminating.store(true, Ordering::SeqCst);
        }
        self.kick();
    }

    /// Wakes every thread wherever it blocks so it can notice `terminating`.
    fn kick(&self) {
        self.module.inner.engine.inner.wasmtime.increment_epoch();
        let keys: Vec<usize> = self.waiters.lock().values().copied().collect();
        wait::wake_all(keys);
        if let Some(fd) = self.wake_fd.get() {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
        // Taking the lock orders this notify after any sleeper's check of `terminating`.
        drop(self.state.lock());
        self.cond.notify_all();
    }

    /// A new store for thread `tid`, with the deadline callback that stops busy wasm.
    pub(crate) fn new_store(self: &Arc<Self>, tid: i32) -> Store<StoreData> {
        let mut limits = wasmtime::StoreLimitsBuilder::new();
        if let Some(max) = self.max_memory {
            limits = limits.memory_size(usize::try_from(max).unwrap_or(usize::MAX));
        }
        let data = StoreData { run: self.clone(), tid, limits: limits.build() };
        let mut store = Store::new(&self.module.inner.engine.inner.wasmtime, data);
        store.limiter(|d| &mut d.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if ctx.data().run.terminating() {
                Err(wasmtime::Error::new(Terminated))
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store
    }

    /// Called by a spawned thread as soon as it has stopped running wasm: from then on it
    /// no longer counts against the thread limit (a guest that joined it may spawn again).
    pub(crate) fn thread_left_wasm(&self) {
        self.state.lock().spawned -= 1;
        self.cond.notify_all();
    }

    /// Called by each thread as its very last act on the run.
    pub(crate) fn thread_gone(&self) {
        self.state.lock().live -= 1;
        self.cond.notify_all();
    }

    /// Waits for the run to end (or the deadline to pass), stops every thread, joins them
    /// and returns the outcome.
    fn supervise(&self, deadline: Option<Instant>) -> RunExit {
        let mut st = self.state.lock();
        while st.outcome.is_none() {
            match deadline {
                Some(d) => {
                    if self.cond.wait_until(&mut st, d).timed_out() && st.outcome.is_none() {
                        drop(st);
                        self.finish(RunExit::host(ExitKind::Timeout));
                        st = self.state.lock();
                    }
                }
                None => self.cond.wait(&mut st),
            }
        }
        // Kick until every thread has left; a thread that checked `terminating` just before
        // it was set may have started blocking after the previous kick.
        let mut pause = Duration::from_micros(50);
        while st.live > 0 {
            drop(st);
            self.kick();
            st = self.state.lock();
            if st.live > 0 {
                self.cond.wait_for(&mut st, pause);
                pause = (pause * 2).min(self.module.inner.engine.inner.kick_interval);
            }
        }
        let exit = st.outcome.clone().expect("outcome is set above");
        drop(st);
        // Taken in a statement of its own, so the lock is not held while joining.
        let handles = std::mem::take(&mut *self.handles.lock());
        for done in handles {
            done.wait();
        }
        self.state.lock().result = Some(exit.clone());
        self.cond.notify_all();
        exit
    }
}

/// A started run. [`Run::wait`] returns how it ended; dropping a run that is still going
/// cancels it and waits for its threads. All methods may be called from any thread.
pub struct Run {
    shared: Arc<RunShared>,
    deadline: Option<Instant>,
    /// The background supervisor of [`Run::start_background`].
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

/// The shared memory of a run: the module's type, its maximum lowered to `max_memory`.
fn shared_memory(wt: &wasmtime::Engine, m: &MemoryImport, max_memory: Option<u64>) -> Result<SharedMemory> {
    let declared = m.ty.maximum().unwrap_or(m.ty.minimum());
    let cap = max_memory.map_or(declared, |bytes| declared.min(bytes / WASM_PAGE));
    if cap < m.ty.minimum() {
        bail!(
            "the memory limit ({} bytes) is below the module's minimum memory ({} pages of 64 KiB)",
            max_memory.unwrap_or(0),
            m.ty.minimum()
        );
    }
    let ty = MemoryType::shared(m.ty.minimum() as u32, cap as u32);
    Ok(SharedMemory::new(wt, ty).with_context(|| format!("creating the shared memory `{}::{}`", m.module, m.name))?)
}

/// Wasm page size: memories here are 32-bit with 64 KiB pages.
const WASM_PAGE: u64 = 65536;

impl Run {
    /// Instantiates the module for the main thread and starts `_start` on a new OS thread.
    /// The first [`Run::wait`] supervises the run (enforces the timeout, stops threads).
    /// Errors (link errors, a missing `_start`, …) mean nothing started.
    pub fn start(module: &Module, config: &RunConfig) -> Result<Run> {
        let inner = &module.inner;
        if let Err(why) = &inner.start {
            bail!("cannot run this module: {why}");
        }
        let wt = &inner.engine.inner.wasmtime;
        let memory = match &inner.memory {
            Some(m) if m.ty.is_shared() => Some(shared_memory(wt, m, config.max_memory)?),
            _ => None,
        };
        let shared = Arc::new(RunShared {
            module: module.clone(),
            pre: OnceLock::new(),
            memory,
            wasi: Mutex::new(crate::wasi::build_ctx(config)?),
            stdio: Stdio::new(Streams::open(&config.stdin, &config.stdout, &config.stderr)?),
            max_threads: config.max_threads,
            max_memory: config.max_memory,
            on_thread_exit: config.on_thread_exit.clone(),
            on_thread_start: config.on_thread_start.clone(),
            terminating: AtomicBool::new(false),
            state: Mutex::new(State { live: 1, ..State::default() }),
            cond: Condvar::new(),
            waiters: Mutex::new(HashMap::new()),
            next_tid: AtomicI32::new(1),
            wake_fd: OnceLock::new(),
            handles: Mutex::new(Vec::new()),
        });
        let mut store = shared.new_store(0);
        let mut linker = inner.linker.clone();
        match (&inner.memory, &shared.memory) {
            (Some(m), Some(mem)) => {
                // A shared memory belongs to no store, so every thread's store can use this
                // definition, though it is made through the main thread's store.
                linker.define(&store, &m.module, &m.name, mem.clone())?;
            }
            (Some(m), None) => {
                let mem = wasmtime::Memory::new(&mut store, m.ty.clone())
                    .with_context(|| format!("creating the memory `{}::{}`", m.module, m.name))?;
                linker.define(&store, &m.module, &m.name, mem)?;
            }
            _ => {}
        }
        let pre = linker.instantiate_pre(&inner.wasmtime).context("linking the module")?;
        let _ = shared.pre.set(pre);
        thread::start_main(&shared, store)?;
        Ok(Run {
            shared,
            deadline: config.timeout.map(|t| Instant::now() + t),
            supervisor: Mutex::new(None),
        })
    }

    /// Like [`Run::start`], plus a supervisor thread that enforces the timeout and stops
    /// the threads as soon as the run ends, whether or not anyone waits.
    pub fn start_background(module: &Module, config: &RunConfig) -> Result<Run> {
        let run = Run::start(module, config)?;
        run.shared.state.lock().supervising = true;
        let (shared, deadline) = (run.shared.clone(), run.deadline);
        match std::thread::Builder::new()
            .name("wasithreads-supervisor".into())
            .spawn(move || drop(shared.supervise(deadline)))
        {
            Ok(h) => *run.supervisor.lock() = Some(h),
            // No thread for a supervisor: the first `wait` will supervise instead.
            Err(_) => run.shared.state.lock().supervising = false,
        }
        Ok(run)
    }

    /// Blocks until the run ended and every thread of it has been joined. May be called
    /// any number of times, from any threads; each call returns the same outcome.
    pub fn wait(&self) -> RunExit {
        let mut st = self.shared.state.lock();
        loop {
            if let Some(exit) = &st.result {
                return exit.clone();
            }
            if !st.supervising {
                st.supervising = true;
                drop(st);
                self.shared.supervise(self.deadline);
                st = self.shared.state.lock();
                continue;
            }
            self.shared.cond.wait(&mut st);
        }
    }

    /// The outcome if the run has ended and all its threads are joined, else `None`.
    pub fn try_wait(&self) -> Option<RunExit> {
        self.shared.state.lock().result.clone()
    }

    /// Ends the run with [`ExitKind::Cancelled`] unless it already ended. Returns at once;
    /// the threads stop within milliseconds. Harmless after the run ended.
    pub fn cancel(&self) {
        self.shared.finish(RunExit::host(ExitKind::Cancelled));
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            self.cancel();
        }
        self.wait();
        if let Some(h) = self.supervisor.lock().take() {
            let _ = h.join();
        }
    }
}
