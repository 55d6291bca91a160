//! A thread group: the guest threads of one run, the state they share, and the
//! machinery that starts, ends and joins them together.
//!
//! This layer knows nothing of [`Module`](crate::Module) or [`Engine`](crate::Engine):
//! what it needs of them (the Wasmtime engine, the thread pool, the interrupt tick, the
//! `InstancePre`, whether the module can run threads) it is given by `run.rs`.
//!
//! - `mod.rs`: [`Group`], [`StoreData`] (the `T` of every store and linker), stores;
//! - `teardown.rs`: stopping every thread wherever it blocks;
//! - `interrupt.rs`: the interrupt page that stops busy wasm;
//! - `thread.rs`: the body of every guest thread;
//! - `spawn.rs`: `thread-spawn`, the thread limit and thread ids;
//! - `supervise.rs`: waiting for the end, the timeout, joining, the outcome;
//! - `coredump.rs`: the core dump of a run that trapped.

mod coredump;
mod interrupt;
mod limits;
mod spawn;
mod supervise;
mod teardown;
mod thread;

pub(crate) use coredump::Recorder;
pub(crate) use interrupt::{InterruptPage, PAGE_BYTES as INTERRUPT_PAGE_BYTES};
pub(crate) use teardown::Teardown;
pub(crate) use thread::THREAD_START;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use wasmtime::{InstancePre, SharedMemory, Store};

use crate::exit::{DiagnosticCallback, RunExit, ThreadExitCallback, ThreadStartCallback};
use crate::io::{FdTable, Stdio};
use crate::pool::Pool;
use crate::trace::OffsetMap;

/// Per-store data: which group and which thread a store belongs to.
pub(crate) struct StoreData {
    pub(crate) group: Arc<Group>,
    pub(crate) tid: i32,
    /// Where this thread records what it is parked on, for teardown (`teardown.rs`).
    pub(crate) waiter: crate::wait::Waiter,
    /// Table elements and private-memory bytes this store took from the run's budgets
    /// (`limits.rs`).
    table_elements: u64,
    memory_bytes: u64,
}

/// What a group is given when it is made (by `run.rs`).
pub(crate) struct Setup {
    pub(crate) engine: wasmtime::Engine,
    /// The run's interrupt page (see `interrupt.rs`).
    pub(crate) interrupt: InterruptPage,
    /// The engine stops busy wasm with epoch checks instead of the interrupt page.
    pub(crate) epoch_interruption: bool,
    pub(crate) pool: Arc<Pool>,
    pub(crate) interrupt_tick: Duration,
    /// False when the module lacks a usable `wasi_thread_start`: spawns fail.
    pub(crate) can_spawn: bool,
    pub(crate) memory: Option<SharedMemory>,
    /// `argv` and `KEY=value` environment strings, as the guest sees them.
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<String>,
    pub(crate) fds: FdTable,
    pub(crate) stdio: Stdio,
    pub(crate) max_threads: u32,
    pub(crate) max_memory: Option<u64>,
    /// Table elements all threads' tables may hold together.
    pub(crate) max_table_elements: u64,
    pub(crate) on_thread_exit: Option<ThreadExitCallback>,
    pub(crate) on_thread_start: Option<ThreadStartCallback>,
    pub(crate) on_diagnostic: Option<DiagnosticCallback>,
    /// How many diagnostic callbacks the run may make.
    pub(crate) max_diagnostics: u32,
    /// How long teardown waits for threads to stop before the run's result is given
    /// without them.
    pub(crate) teardown_grace: Duration,
    /// The module's offset map, for backtraces in the user's offsets.
    pub(crate) offsets: Arc<OffsetMap>,
    /// Where to write a core dump if the run ends by a trap.
    pub(crate) coredump: Option<Recorder>,
}

/// The bookkeeping of a group, under [`Group::state`].
#[derive(Default)]
struct State {
    /// The first event that ended the run: it decides the outcome.
    first_exit: Option<RunExit>,
    /// Threads that exist (main included) and have not finished their exit callback.
    live: BTreeSet<i32>,
    /// Spawned threads that have not stopped running wasm, for the thread limit.
    spawned: u32,
    /// Someone (a waiter or the background supervisor) is running `supervise`.
    supervising: bool,
    /// `first_exit`, set once every thread has been joined.
    joined_exit: Option<RunExit>,
}

/// Everything the threads of one run share.
pub(crate) struct Group {
    engine: wasmtime::Engine,
    pool: Arc<Pool>,
    /// Set once, before any thread starts.
    pre: OnceLock<InstancePre<StoreData>>,
    can_spawn: bool,
    /// The run's shared memory, if the module imports one.
    pub(crate) memory: Option<SharedMemory>,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<String>,
    /// The descriptors of the run, shared by all threads; locked only for lookups.
    pub(crate) fds: FdTable,
    pub(crate) stdio: Stdio,
    /// Time zero of the guest's monotonic clock (`clock_time_get(monotonic)`).
    pub(crate) clock_zero: Instant,
    max_threads: u32,
    table_budget: limits::Budget,
    /// Bytes all private (unshared) memories of the run may hold together.
    memory_budget: limits::Budget,
    on_thread_exit: Option<ThreadExitCallback>,
    on_thread_start: Option<ThreadStartCallback>,
    on_diagnostic: Option<DiagnosticCallback>,
    diagnostics_left: AtomicU32,
    teardown_grace: Duration,
    offsets: Arc<OffsetMap>,
    coredump: Option<Recorder>,
    pub(crate) teardown: Teardown,
    state: Mutex<State>,
    /// Signalled on every change of `state` and on every kick.
    cond: Condvar,
    next_tid: AtomicI32,
    /// Set by the first instance that asks (`first_instance` of the rewrite).
    first_instance_claimed: std::sync::atomic::AtomicBool,
    /// Guest threads whose pool job has not finished (and dropped what it held).
    jobs: Arc<Jobs>,
}

/// Counts the pool jobs of a group that have not finished: what the supervisor joins.
/// O(1) per thread however many threads a run spawns over its life.
#[derive(Default)]
pub(super) struct Jobs {
    running: Mutex<usize>,
    cond: Condvar,
}

/// One running job; dropping it (when the job is done) counts it out.
pub(super) struct Job(Arc<Jobs>);

impl Jobs {
    pub(super) fn begin(self: &Arc<Self>) -> Job {
        *self.running.lock() += 1;
        Job(self.clone())
    }

    /// Blocks until every job has finished.
    pub(super) fn wait_all(&self) {
        let mut running = self.running.lock();
        while *running > 0 {
            self.cond.wait(&mut running);
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        *self.0.running.lock() -= 1;
        self.0.cond.notify_all();
    }
}

impl Group {
    pub(crate) fn new(s: Setup) -> Arc<Group> {
        Arc::new(Group {
            teardown: Teardown::new(s.interrupt, s.epoch_interruption.then(|| s.engine.clone()), s.interrupt_tick),
            engine: s.engine,
            pool: s.pool,
            pre: OnceLock::new(),
            can_spawn: s.can_spawn,
            memory: s.memory,
            args: s.args,
            env: s.env,
            fds: s.fds,
            stdio: s.stdio,
            clock_zero: Instant::now(),
            max_threads: s.max_threads,
            table_budget: limits::Budget::new(s.max_table_elements),
            memory_budget: limits::Budget::new(s.max_memory.unwrap_or(u64::MAX)),
            on_thread_exit: s.on_thread_exit,
            on_thread_start: s.on_thread_start,
            on_diagnostic: s.on_diagnostic,
            diagnostics_left: AtomicU32::new(s.max_diagnostics),
            teardown_grace: s.teardown_grace,
            offsets: s.offsets,
            coredump: s.coredump,
            state: Mutex::new(State { live: BTreeSet::from([0]), ..State::default() }),
            cond: Condvar::new(),
            next_tid: AtomicI32::new(1),
            first_instance_claimed: Default::default(),
            jobs: Arc::default(),
        })
    }

    /// Sets the linked module every thread instantiates. Called once, before any thread.
    pub(crate) fn set_pre(&self, pre: InstancePre<StoreData>) {
        let _ = self.pre.set(pre);
    }

    fn pre(&self) -> &InstancePre<StoreData> {
        self.pre.get().expect("the instance-pre is set before any thread starts")
    }

    /// A new store for thread `tid`, with the run's resource limits.
    pub(crate) fn new_store(self: &Arc<Self>, tid: i32) -> Store<StoreData> {
        let data = StoreData {
            group: self.clone(),
            tid,
            waiter: self.teardown.signal.waiter(tid),
            table_elements: 0,
            memory_bytes: 0,
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|d| d);
        if self.teardown.uses_epochs() {
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(|ctx| {
                ctx.data().group.teardown.signal.bail_if_ending()?;
                Ok(wasmtime::UpdateDeadline::Continue(1))
            });
        }
        store
    }

    /// Records how the run ended (the first call wins) and starts stopping every thread.
    pub(crate) fn finish(&self, exit: RunExit) {
        {
            let mut st = self.state.lock();
            if st.first_exit.is_none() {
                st.first_exit = Some(exit);
            }
            self.teardown.begin();
        }
        self.kick();
    }

    /// Wakes every thread wherever it blocks, and whoever waits on the group's state
    /// (a spawn at the thread limit, the supervisor).
    fn kick(&self) {
        self.teardown.kick();
        // Taking the lock orders this notify after any waiter's check of `ending`.
        drop(self.state.lock());
        self.cond.notify_all();
    }

    /// True for the first caller in the run's life: the instance that applies the shared
    /// memory's data segments.
    pub(crate) fn claim_first_instance(&self) -> bool {
        !self.first_instance_claimed.swap(true, Ordering::SeqCst)
    }

    /// Tells the host (diagnostic callback) about something thread `tid` ran into. The
    /// run's budget of messages ends with one that says more were dropped.
    pub(crate) fn diagnose(&self, tid: i32, message: &str) {
        let Some(cb) = &self.on_diagnostic else { return };
        let left = self.diagnostics_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        let message = match left {
            Ok(1) => format!("{message} (further diagnostics of this run are dropped)"),
            Ok(_) => message.to_string(),
            Err(_) => return,
        };
        // A panicking Rust callback must not unwind into the guest's host call.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(tid, &message)));
    }

    /// Called by a spawned thread as soon as it has stopped running wasm: from then on it
    /// no longer counts against the thread limit (a guest that joined it may spawn again).
    fn thread_left_wasm(&self) {
        self.state.lock().spawned -= 1;
        self.cond.notify_all();
    }

    /// Called by each thread as its very last act on the run.
    fn thread_gone(&self, tid: i32) {
        self.state.lock().live.remove(&tid);
        self.cond.notify_all();
    }
}
