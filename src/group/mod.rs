//! A thread group: the guest threads of one run, the state they share, and the
//! machinery that starts, ends and joins them together.
//!
//! This layer knows nothing of [`Module`](crate::Module) or [`Engine`](crate::Engine):
//! what it needs of them (the Wasmtime engine, the thread pool, the interrupt tick, the
//! `InstancePre`, whether the module can run threads) it is given by `run.rs`.
//!
//! - `mod.rs`: [`Group`], [`StoreData`] (the `T` of every store and linker), stores;
//! - `teardown.rs`: stopping every thread wherever it blocks;
//! - `thread.rs`: the body of every guest thread;
//! - `spawn.rs`: `thread-spawn`, the thread limit and thread ids;
//! - `supervise.rs`: waiting for the end, the timeout, joining, the outcome.

mod spawn;
mod supervise;
mod teardown;
mod thread;

pub(crate) use teardown::{Teardown, Terminated};
pub(crate) use thread::THREAD_START;

use std::sync::atomic::AtomicI32;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use wasmtime::{InstancePre, SharedMemory, Store, UpdateDeadline};

use crate::exit::{RunExit, ThreadExitCallback, ThreadStartCallback};
use crate::io::{FdTable, Stdio};
use crate::pool::{Done, Pool};

/// Per-store data: which group and which thread a store belongs to.
pub(crate) struct StoreData {
    pub(crate) group: Arc<Group>,
    pub(crate) tid: i32,
    /// Caps an unshared memory's growth (shared memories are capped by their type).
    limits: wasmtime::StoreLimits,
}

/// What a group is given when it is made (by `run.rs`).
pub(crate) struct Setup {
    pub(crate) engine: wasmtime::Engine,
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
    pub(crate) on_thread_exit: Option<ThreadExitCallback>,
    pub(crate) on_thread_start: Option<ThreadStartCallback>,
}

/// The bookkeeping of a group, under [`Group::state`].
#[derive(Default)]
struct State {
    /// The first event that ended the run: it decides the outcome.
    first_exit: Option<RunExit>,
    /// Threads that exist (main included) and have not finished their exit callback.
    live: usize,
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
    max_memory: Option<u64>,
    on_thread_exit: Option<ThreadExitCallback>,
    on_thread_start: Option<ThreadStartCallback>,
    pub(crate) teardown: Teardown,
    state: Mutex<State>,
    /// Signalled on every change of `state` and on every kick.
    cond: Condvar,
    next_tid: AtomicI32,
    /// One per thread started: set when that thread is completely done with the run.
    handles: Mutex<Vec<Arc<Done>>>,
}

impl Group {
    pub(crate) fn new(s: Setup) -> Arc<Group> {
        Arc::new(Group {
            teardown: Teardown::new(s.engine.clone(), s.interrupt_tick),
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
            max_memory: s.max_memory,
            on_thread_exit: s.on_thread_exit,
            on_thread_start: s.on_thread_start,
            state: Mutex::new(State { live: 1, ..State::default() }),
            cond: Condvar::new(),
            next_tid: AtomicI32::new(1),
            handles: Mutex::new(Vec::new()),
        })
    }

    /// Sets the linked module every thread instantiates. Called once, before any thread.
    pub(crate) fn set_pre(&self, pre: InstancePre<StoreData>) {
        let _ = self.pre.set(pre);
    }

    fn pre(&self) -> &InstancePre<StoreData> {
        self.pre.get().expect("the instance-pre is set before any thread starts")
    }

    /// A new store for thread `tid`, with the deadline callback that stops busy wasm.
    pub(crate) fn new_store(self: &Arc<Self>, tid: i32) -> Store<StoreData> {
        let mut limits = wasmtime::StoreLimitsBuilder::new();
        if let Some(max) = self.max_memory {
            limits = limits.memory_size(usize::try_from(max).unwrap_or(usize::MAX));
        }
        let data = StoreData { group: self.clone(), tid, limits: limits.build() };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|d| &mut d.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            ctx.data().group.teardown.bail_if_ending()?;
            Ok(UpdateDeadline::Continue(1))
        });
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

    /// Called by a spawned thread as soon as it has stopped running wasm: from then on it
    /// no longer counts against the thread limit (a guest that joined it may spawn again).
    fn thread_left_wasm(&self) {
        self.state.lock().spawned -= 1;
        self.cond.notify_all();
    }

    /// Called by each thread as its very last act on the run.
    fn thread_gone(&self) {
        self.state.lock().live -= 1;
        self.cond.notify_all();
    }
}
