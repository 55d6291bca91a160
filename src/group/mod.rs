//! A thread group: the guest threads of one run, the state they share, and the
//! machinery that starts, ends and joins them together.
//!
//! This layer knows nothing of [`Module`](crate::Module) or [`Engine`](crate::Engine):
//! what it needs of them ([`Program`], the [`Teardown`] with the run's interrupt page, the
//! `InstancePre`) it is given by `run.rs`. A group is made of parts that each own their
//! state: the run's [`Budgets`] (from its [`Limits`]), its [`RunHooks`], its WASI state,
//! its core dump [`Recorder`], its [`Teardown`] and its [`Lifecycle`](lifecycle::Lifecycle).
//!
//! - `mod.rs`: [`Group`], [`StoreData`] (the `T` of every store and linker), stores, and
//!   the supervision of a run: waiting for its end, the timeout, joining, the outcome;
//! - `lifecycle.rs`: how the run ended, which threads exist, who supervises;
//! - `teardown.rs`: stopping every thread wherever it is;
//! - `thread.rs`: `thread-spawn` and the body of every guest thread;
//! - `adopt.rs`: what an instance adds: host threads adopted as guest threads, export
//!   calls counted as running threads.

mod adopt;
mod heap;
mod lifecycle;
mod teardown;
mod thread;

pub(crate) use adopt::{AdoptRequest, Adopted};
pub(crate) use teardown::Teardown;
pub(crate) use thread::THREAD_START;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use wasmtime::{InstancePre, SharedMemory, Store};

use crate::coredump::Recorder;
use crate::exit::{panic_message, ExitKind, RunExit};
use crate::hooks::RunHooks;
use crate::limits::{Budgets, InstanceCost, Limits, StoreLimiter};
use crate::pool::Pool;
use crate::trace::OffsetMap;
use crate::wasi::WasiState;
use lifecycle::Lifecycle;

/// Per-store data: which group and which thread a store belongs to.
pub(crate) struct StoreData {
    pub(crate) group: Arc<Group>,
    pub(crate) tid: i32,
    /// Where this thread records what it is parked on, for teardown (`teardown.rs`).
    pub(crate) waiter: crate::wait::Waiter,
    /// What this store may take of the run's budgets, and what it took.
    limiter: StoreLimiter,
    /// Set on an instance's main store while it adopts a host thread (`adopt.rs`).
    pub(crate) adopt_request: Option<AdoptRequest>,
    /// Set on a store while its host thread is being adopted: its `adopted` import
    /// then unwinds instead of trapping.
    pub(crate) adopting: bool,
}

/// What the threads of a run run, and on what: given by `run.rs`.
pub(crate) struct Program {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) pool: Arc<Pool>,
    /// False when the module lacks a usable `wasi_thread_start`: spawns fail.
    pub(crate) can_spawn: bool,
    /// The module's offset map, for backtraces in the user's offsets.
    pub(crate) offsets: Arc<OffsetMap>,
    /// What each thread's instance takes of the run's budgets.
    pub(crate) instance: InstanceCost,
}

/// Everything the threads of one run share.
pub(crate) struct Group {
    program: Program,
    /// The linked module every thread instantiates; set once, before any thread starts.
    pre: OnceLock<InstancePre<StoreData>>,
    /// The run's host functions, `module::name` by index (`host/imports.rs`).
    host_names: OnceLock<Vec<String>>,
    /// The run's shared memory, if the module imports one.
    pub(crate) memory: Option<SharedMemory>,
    next_tid: AtomicI32,
    /// Set by the first instance that asks (`first_instance` of the rewrite).
    first_instance_claimed: AtomicBool,
    /// Arguments, environment, descriptors, standard streams, clocks.
    pub(crate) wasi: WasiState,
    budgets: Budgets,
    hooks: RunHooks,
    coredump: Option<Recorder>,
    pub(crate) teardown: Teardown,
    life: Lifecycle,
}

impl Group {
    pub(crate) fn new(
        program: Program,
        memory: Option<SharedMemory>,
        teardown: Teardown,
        limits: &Limits,
        hooks: RunHooks,
        wasi: WasiState,
        coredump: Option<Recorder>,
    ) -> Arc<Group> {
        Arc::new(Group {
            program,
            pre: OnceLock::new(),
            host_names: OnceLock::new(),
            memory,
            next_tid: AtomicI32::new(1),
            first_instance_claimed: AtomicBool::new(false),
            wasi,
            budgets: Budgets::new(limits),
            hooks,
            coredump,
            teardown,
            life: Lifecycle::new(),
        })
    }

    /// Names the host functions of the run (`module::name`, in the order they were
    /// linked), for the report of a thread stuck in one. Called once, at launch.
    pub(crate) fn set_host_names(&self, names: Vec<String>) {
        let _ = self.host_names.set(names);
    }

    /// Sets the linked module every thread instantiates. Called once, before any thread.
    pub(crate) fn set_pre(&self, pre: InstancePre<StoreData>) {
        let _ = self.pre.set(pre);
    }

    fn pre(&self) -> &InstancePre<StoreData> {
        self.pre.get().expect("the instance-pre is set before any thread starts")
    }

    /// A new store for thread `tid`, with the run's resource limits, holding what its
    /// instance takes of them; `Err(why)` when the instance does not fit.
    pub(crate) fn new_store(self: &Arc<Self>, tid: i32) -> Result<Store<StoreData>, String> {
        let data = StoreData {
            group: self.clone(),
            tid,
            waiter: self.teardown.signal.waiter(tid),
            limiter: self.budgets.store_limiter(self.program.instance)?,
            adopt_request: None,
            adopting: false,
        };
        let mut store = Store::new(&self.program.engine, data);
        store.limiter(|d| &mut d.limiter);
        if self.teardown.uses_epochs() {
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(|ctx| {
                ctx.data().group.teardown.signal.bail_if_ending()?;
                Ok(wasmtime::UpdateDeadline::Continue(1))
            });
        }
        Ok(store)
    }

    /// True for the first caller in the run's life: the instance that applies the shared
    /// memory's data segments.
    pub(crate) fn claim_first_instance(&self) -> bool {
        !self.first_instance_claimed.swap(true, Ordering::SeqCst)
    }

    /// Runs a host function's callback through the run's callback gate (`None` once the
    /// run's end was reported to the host).
    pub(crate) fn call_host<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        self.hooks.call(f)
    }

    /// The pool the run's threads and blocking jobs run on.
    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.program.pool
    }

    /// Records how the run ended (the first call wins) and starts stopping every thread.
    pub(crate) fn finish(&self, exit: RunExit) {
        self.life.finish(&self.teardown, exit);
    }

    /// Asks for the run to be cancelled (async-signal-safe): its supervisor ends it at
    /// once, or whoever waits for it next. See [`Lifecycle::ask_cancel`].
    pub(crate) fn ask_cancel(&self) {
        self.life.ask_cancel();
    }

    /// Starts a thread that supervises the group at once, so the timeout is enforced and
    /// threads are stopped whether or not anyone waits. `None` if the OS gave no thread:
    /// then waiters (and `try_wait`) supervise instead.
    pub(crate) fn supervise_in_background(self: &Arc<Self>, deadline: Option<Instant>) -> Option<JoinHandle<()>> {
        self.life.claim_supervision();
        let group = self.clone();
        let spawned = std::thread::Builder::new()
            .name("wasithreads-supervisor".into())
            .spawn(move || drop(group.supervise(deadline)));
        match spawned {
            Ok(handle) => Some(handle),
            Err(_) => {
                self.life.release_supervision();
                None
            }
        }
    }

    /// Blocks until the run ended and every thread of it has been joined, supervising
    /// the group if nobody does yet. Each call returns the same outcome.
    pub(crate) fn wait(self: &Arc<Self>, deadline: Option<Instant>) -> RunExit {
        self.life.wait(|| self.supervise(deadline))
    }

    /// The outcome if the run has ended and all its threads are joined, else `None`.
    /// When nobody supervises the run, this also enforces `deadline` and, once the run
    /// has ended, kicks the threads and joins them when they are gone.
    pub(crate) fn try_wait(self: &Arc<Self>, deadline: Option<Instant>) -> Option<RunExit> {
        self.life.try_wait(&self.teardown, deadline, || self.supervise(deadline))
    }

    /// Waits for the run to end (or `deadline` to pass: a timeout), stops every thread,
    /// joins them, writes the core dump, and publishes the outcome. One caller at a time
    /// (the lifecycle's supervision claim). Never leaves waiters blocked: a panic in here
    /// still publishes an outcome.
    fn supervise(self: &Arc<Self>, deadline: Option<Instant>) -> RunExit {
        let exit = catch_unwind(AssertUnwindSafe(|| {
            let exit = self.life.stop(&self.teardown, deadline);
            if exit.unstopped.is_empty() {
                self.life.unjoined.join_all();
                self.wasi.close_fds();
            } else {
                self.abandon(&exit.unstopped);
            }
            self.write_coredump(&exit);
            exit
        }));
        // A store kept for the dump holds the group: let it go, dump written or not.
        if let Some(rec) = &self.coredump {
            rec.close();
        }
        let exit = exit.unwrap_or_else(|panic| {
            self.finish(RunExit::host(ExitKind::Cancelled));
            RunExit::trap(-1, format!("internal error: the run's supervisor panicked: {}", panic_message(&*panic)))
        });
        self.life.publish(exit)
    }

    /// Gives up waiting for threads that did not stop within the teardown grace: the run's
    /// result is given without them, the host is told, and a thread of ours keeps kicking
    /// them until they are gone (each stops at its next interruption point).
    fn abandon(self: &Arc<Self>, tids: &[i32]) {
        let names = self.host_names.get();
        let list: Vec<String> = tids
            .iter()
            .map(|&tid| match self.teardown.signal.host_call_of(tid).and_then(|i| names?.get(i as usize)) {
                Some(name) => format!("{tid} (inside host function `{name}`)"),
                None => tid.to_string(),
            })
            .collect();
        let grace = self.teardown.grace.as_millis();
        self.hooks.diagnose(
            tids[0],
            &format!(
                "thread(s) {} had not stopped {grace} ms after the run ended (a long host callback, or one \
                 long wasm instruction such as a huge memory.fill); the run's result was given without them, and \
                 once it is, they make no further callback",
                list.join(", ")
            ),
        );
        let group = self.clone();
        let _ = std::thread::Builder::new()
            .name("wasithreads-reaper".into())
            .spawn(move || group.life.keep_kicking(&group.teardown));
    }

    /// Keeps what the run's core dump needs of thread `tid`, which stopped with `err`
    /// (`trapped`: a trap of its own, not a stop): the store itself when its trap ended
    /// the run, else `store` is given back. Nothing without a core dump path.
    fn keep_for_coredump(
        &self,
        tid: i32,
        store: Store<StoreData>,
        err: &wasmtime::Error,
        trapped: bool,
    ) -> Option<Store<StoreData>> {
        match &self.coredump {
            Some(rec) => {
                let ended_run = trapped && self.life.ended_by_trap_of(tid);
                rec.keep(tid, store, err, ended_run, &self.program.offsets)
            }
            None => Some(store),
        }
    }

    /// Writes the core dump of a run that ended by a trap, once its threads are joined.
    /// A failure to write is reported through the diagnostic callback.
    fn write_coredump(&self, exit: &RunExit) {
        if let Some(rec) = &self.coredump {
            let name = self.wasi.args().first().map(String::as_str);
            if let Err(e) = rec.write(exit, self.memory.as_ref(), name, &self.program.offsets) {
                self.hooks.diagnose(exit.tid, &format!("{e:#}"));
            }
        }
    }
}
