//! Call workers: guest threads that host threads call exports on.
//!
//! In parallel mode (a module the rewrite gave the adoption pieces, `module/adopt.rs`)
//! a host thread's first call adopts it: the main store runs the adoption export
//! (wasi-libc's `pthread_create`, whose `thread-spawn` hands out a thread id without a
//! thread), then a new store and instance for that thread id run `wasi_thread_start`
//! on the calling host thread, which sets up the guest thread's stack and TLS and
//! unwinds back here. The worker (store, instance, thread id, seat of the thread
//! budget) then serves calls. Idle workers wait in the instance's [`Workers`]; a host
//! thread gets the one it used last if it is idle, else one whose host thread exited,
//! else a new one, else (at the thread limit) any idle one, waiting for one if need be.
//! So a host thread keeps its guest thread (and its thread-locals) while it lives,
//! workers of host threads that exited serve new ones, and their number stays at the
//! most calls ever in flight at once.

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use wasmtime::{Func, Store, TypedFunc};

use crate::error::{error, ErrorKind};
use crate::exit::RunExit;
use crate::group::{AdoptRequest, Adopted, Group, StoreData, THREAD_START};
use crate::limits::Share;
use crate::module::ADOPT_EXPORT;

/// A store and instance that calls run on, with the exports looked up so far (by the
/// instance's export index).
pub(crate) struct Callee {
    pub(crate) store: Store<StoreData>,
    pub(crate) instance: wasmtime::Instance,
    funcs: Vec<Option<Func>>,
}

impl Callee {
    pub(crate) fn new(store: Store<StoreData>, instance: wasmtime::Instance) -> Callee {
        Callee { store, instance, funcs: Vec::new() }
    }

    /// The exported function `name`, export number `index` of the instance's callable
    /// exports: looked up once per callee.
    pub(crate) fn func(&mut self, index: usize, name: &str) -> Option<Func> {
        if let Some(Some(f)) = self.funcs.get(index) {
            return Some(*f);
        }
        let f = self.instance.get_func(&mut self.store, name)?;
        if self.funcs.len() <= index {
            self.funcs.resize(index + 1, None);
        }
        self.funcs[index] = Some(f);
        Some(f)
    }
}

/// A guest thread serving calls: its store and instance.
pub(crate) struct Worker {
    pub(crate) callee: Callee,
    pub(crate) tid: i32,
    /// Its seat in the instance's thread budget.
    _seat: Share,
}

/// The main thread's store and instance, where adoptions (and, in serial mode, every
/// call) run.
pub(crate) type Main = Callee;

/// Why a call could not get a worker.
pub(crate) enum NoWorker {
    /// The instance ended: its first exit.
    Ended(RunExit),
    /// The thread limit (or the guest's `pthread_create`) refused a new guest thread.
    Refused(anyhow::Error),
    /// A failure that leaves the instance as it was.
    Failed(anyhow::Error),
}

thread_local! {
    /// Per instance (by its group's address), the thread id of the worker this host
    /// thread used last.
    static LAST: RefCell<Vec<(usize, i32)>> = const { RefCell::new(Vec::new()) };
    /// Lives as long as this host thread: workers it used last hold it weakly, so others
    /// can tell when it has exited.
    static ALIVE: Arc<()> = Arc::new(());
}

/// An idle worker and the host thread that used it last.
struct Idle {
    worker: Worker,
    owner: Weak<()>,
}

/// The idle workers of one instance.
#[derive(Default)]
pub(crate) struct Workers {
    idle: Mutex<Vec<Idle>>,
    /// Signalled when a worker is put back.
    returned: Condvar,
    /// Workers made so far (idle or serving a call).
    made: std::sync::atomic::AtomicUsize,
}

impl Workers {
    /// The worker the calling host thread used last, if it is idle, else an idle worker
    /// whose host thread has exited.
    pub(crate) fn take(&self, group: &Arc<Group>) -> Option<Worker> {
        let key = Arc::as_ptr(group) as usize;
        let last = LAST.with(|l| l.borrow().iter().find(|(k, _)| *k == key).map(|&(_, tid)| tid));
        let mut idle = self.idle.lock();
        let at = match last.and_then(|tid| idle.iter().rposition(|w| w.worker.tid == tid)) {
            Some(at) => at,
            None => idle.iter().position(|w| w.owner.strong_count() == 0)?,
        };
        Some(idle.swap_remove(at).worker)
    }

    /// Any idle worker, waiting for one to be put back if none is, until the instance
    /// ends. For when no new worker can be made (the thread limit).
    pub(crate) fn take_any(&self, group: &Group) -> Result<Worker, RunExit> {
        let mut idle = self.idle.lock();
        loop {
            if let Some(w) = idle.pop() {
                return Ok(w.worker);
            }
            if group.teardown.signal.is_ending() {
                return Err(group.ended_exit());
            }
            // The instance's end does not signal this condvar: look again now and then.
            self.returned.wait_for(&mut idle, Duration::from_millis(5));
        }
    }

    /// Gives `worker` back after a call that returned.
    pub(crate) fn put(&self, group: &Arc<Group>, worker: Worker) {
        let key = Arc::as_ptr(group) as usize;
        LAST.with(|l| {
            let mut l = l.borrow_mut();
            match l.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = worker.tid,
                None => {
                    // Instances this thread used long ago (maybe freed) make room.
                    if l.len() >= 64 {
                        l.remove(0);
                    }
                    l.push((key, worker.tid));
                }
            }
        });
        let owner = ALIVE.with(Arc::downgrade);
        self.idle.lock().push(Idle { worker, owner });
        self.returned.notify_one();
    }

    /// Counts a worker made by [`adopt`].
    pub(crate) fn made_one(&self) {
        self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// True when no worker was ever made (none to wait for).
    pub(crate) fn none_made(&self) -> bool {
        self.made.load(std::sync::atomic::Ordering::Relaxed) == 0
    }

    /// How many workers are idle.
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().len()
    }

    /// Drops every idle worker (their stores and instances).
    pub(crate) fn clear(&self) {
        let all = std::mem::take(&mut *self.idle.lock());
        drop(all);
    }
}

/// Makes the calling host thread a guest thread of `group`: see the opening of this file.
pub(crate) fn adopt(group: &Arc<Group>, main: &Mutex<Main>) -> Result<Worker, NoWorker> {
    let (tid, arg, seat) = {
        let mut main = main.lock();
        let Callee { store, instance, .. } = &mut *main;
        let export: TypedFunc<(), i32> = instance
            .get_typed_func(&mut *store, ADOPT_EXPORT)
            .map_err(|e| NoWorker::Failed(anyhow::anyhow!("the adoption export: {e:#}")))?;
        group.enter_call(0).map_err(NoWorker::Ended)?;
        store.data_mut().adopt_request = Some(AdoptRequest::default());
        let created = export.call(&mut *store, ());
        let request = store.data_mut().adopt_request.take().unwrap_or_default();
        let created = match created {
            Ok(r) => r,
            Err(e) => {
                let exit = group.call_failed(0, store, &e);
                group.leave_call(0);
                return Err(NoWorker::Ended(exit));
            }
        };
        group.leave_call(0);
        match (created, request.spawned) {
            (0, Some(spawned)) => spawned,
            (errno, _) => {
                let why = request.refused.unwrap_or_else(|| format!("pthread_create failed with errno {errno}"));
                group.adoption_failed(&why);
                return Err(NoWorker::Refused(error(
                    ErrorKind::Limit,
                    format!("no guest thread for this host thread: {why}"),
                )));
            }
        }
    };
    let mut store = group.new_store(tid).map_err(|why| {
        NoWorker::Refused(error(ErrorKind::Limit, format!("no guest thread for this host thread: {why}")))
    })?;
    group.enter_call(tid).map_err(NoWorker::Ended)?;
    store.data_mut().adopting = true;
    let started = group.instantiate(&mut store).and_then(|instance| {
        let start: TypedFunc<(i32, i32), ()> = instance.get_typed_func(&mut store, THREAD_START)?;
        Ok((instance, start.call(&mut store, (tid, arg))))
    });
    store.data_mut().adopting = false;
    let result = match started {
        Ok((instance, Err(e))) if e.is::<Adopted>() => {
            Ok(Worker { callee: Callee::new(store, instance), tid, _seat: seat })
        }
        Ok((_, Ok(()))) => Err(NoWorker::Failed(error(
            ErrorKind::Other,
            "the adopted thread's `wasi_thread_start` returned without starting it",
        ))),
        Ok((_, Err(e))) | Err(e) => Err(NoWorker::Ended(group.call_failed(tid, &mut store, &e))),
    };
    group.leave_call(tid);
    result
}
