//! A run's guest threads: `thread-spawn` (the thread limit, thread ids, a new store on a
//! new OS thread, which makes its own instance and tells the spawner whether that
//! worked), and the body of every thread: call into wasm, classify how it ended, end the
//! run if the thread's end ends the run, report through the exit callback, leave.
//!
//! Every failure of a spawn is a negative return to the guest, never a trap, and is
//! reported to the host through the diagnostic callback.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use wasmtime::{Store, Trap, TypedFunc, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use parking_lot::{Condvar, Mutex};

use super::{Group, StoreData};
use crate::error::{ErrorKind, ResultKind};
use crate::exit::{panic_message, RunExit, ThreadExit};
use crate::limits::Share;
use crate::wait::Terminated;

/// The export that runs a spawned thread, fixed by the wasi-threads proposal.
pub(crate) const THREAD_START: &str = "wasi_thread_start";

/// Largest thread id the proposal allows.
pub(super) const MAX_TID: i32 = 0x1FFF_FFFF;
/// How long a spawn at the thread limit waits for a thread to finish leaving.
pub(super) const LIMIT_GRACE: Duration = Duration::from_millis(20);
/// WASI errno `again`: resources (threads, ids) are exhausted.
const EAGAIN: i32 = 6;
/// WASI errno `nosys`: the module cannot run threads.
const ENOSYS: i32 = 52;

/// What a thread runs: for the main thread, instantiation (which runs the module's start
/// function, if any) and `_start`; for the others, `wasi_thread_start(tid, arg)` of an
/// instance the spawner made ([`Made`]), or instantiation first, telling the spawner
/// through `started` whether the instance could be made.
///
/// A spawner makes the instance itself when it has the stack for it (see
/// [`SPAWNER_STACK_SLACK`]): it then goes on at once, instead of waiting for the new
/// thread to be scheduled and answer, which made starting many threads at once several
/// times slower than native. Otherwise (a spawn from a start function that runs nested on
/// a spawner's stack, a spawner off the pool) the instance is made on the new thread, so
/// start functions that spawn can never nest without bound on one native stack.
enum Entry {
    Main,
    Made { arg: i32, start: TypedFunc<(i32, i32), ()> },
    Spawned { arg: i32, started: Arc<Started> },
}

/// How far below a full stack of the pool a spawner's native stack may be for it to make
/// the new thread's instance itself. Pool threads have `max_wasm_stack` plus 2 MiB
/// (`engine.rs`), so such a spawner has a whole wasm stack left for the instance's start
/// function and 1 MiB for host code.
const SPAWNER_STACK_SLACK: usize = 1 << 20;

/// How a spawned thread's instantiation went, for the spawner waiting on it.
#[derive(Default)]
struct Started {
    result: Mutex<Option<Result<(), String>>>,
    cond: Condvar,
}

impl Started {
    fn set(&self, r: Result<(), String>) {
        let mut slot = self.result.lock();
        if slot.is_none() {
            *slot = Some(r);
        }
        self.cond.notify_all();
    }

    /// Waits for the thread's answer; `Err(Terminated)` if the run ended meanwhile. The
    /// answer always comes, without polling: the new thread's instantiation is stopped by
    /// teardown like any wasm, and [`AnswerOnDrop`] answers for a thread that failed.
    fn wait(&self, teardown: &super::Teardown) -> wasmtime::Result<Result<(), String>> {
        let mut slot = self.result.lock();
        let answer = loop {
            if let Some(r) = slot.take() {
                break r;
            }
            self.cond.wait(&mut slot);
        };
        teardown.signal.bail_if_ending()?;
        Ok(answer)
    }
}

/// Answers the spawner with an error if the thread never said how it went (a panic).
struct AnswerOnDrop(Arc<Started>);

impl Drop for AnswerOnDrop {
    fn drop(&mut self) {
        self.0.set(Err("the thread failed before its instance was made".into()));
    }
}

/// Turns the result of a guest call into how the thread ended.
fn classify(group: &Group, result: &std::thread::Result<wasmtime::Result<()>>) -> ThreadExit {
    let err = match result {
        Ok(Ok(())) => return ThreadExit::Returned,
        Ok(Err(e)) => e,
        Err(panic) => {
            let what = panic_message(&**panic);
            return ThreadExit::Trapped(format!("host panic while running the thread: {what}"));
        }
    };
    if err.is::<Terminated>() || group.teardown.is_interruption(err.downcast_ref::<Trap>()) {
        return ThreadExit::Terminated { backtrace: group.backtrace(err) };
    }
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return ThreadExit::Exited(exit.0);
    }
    ThreadExit::Trapped(trap_message(group, err))
}

/// "wasm trap: <reason>" (or the host error), then the wasm backtrace, one frame a line,
/// innermost first, with function names where the module has a name section.
pub(super) fn trap_message(group: &Group, err: &wasmtime::Error) -> String {
    let mut msg = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    };
    if let Some(bt) = group.backtrace(err) {
        msg.push('\n');
        msg.push_str(&bt);
    }
    msg
}

/// Blocks SIGPIPE on the calling (guest) thread: a guest writing to a pipe without a
/// reader gets EPIPE instead of the signal killing the host process. A SIGPIPE raised for
/// this thread stays pending and is discarded when the thread exits.
fn block_sigpipe() {
    // SAFETY: plain libc calls on a local, fully initialised signal set; only this
    // thread's mask changes.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Instantiates the module in `store` (running its start function here) and finds
/// `wasi_thread_start`.
fn instantiate_spawned(group: &Group, store: &mut Store<StoreData>) -> wasmtime::Result<TypedFunc<(i32, i32), ()>> {
    let instance = group.pre().instantiate(&mut *store)?;
    instance.get_typed_func::<(i32, i32), ()>(&mut *store, THREAD_START)
}

/// Runs one guest thread. `seat`, a spawned thread's share of the thread budget, is
/// given back as soon as the thread stopped running wasm: a guest that joined it may
/// spawn again.
fn run_thread(group: Arc<Group>, mut store: Store<StoreData>, entry: Entry, seat: Option<Share>) {
    block_sigpipe();
    let tid = store.data().tid;
    let result = catch_unwind(AssertUnwindSafe(|| -> Option<wasmtime::Result<()>> {
        match entry {
            Entry::Main => Some((|| {
                group.hooks.thread_started(tid);
                group.teardown.signal.bail_if_ending()?;
                // Here, not on the host's thread: a start function that never returns is
                // then stopped by timeout or cancel like any guest code.
                let instance = group.pre().instantiate(&mut store)?;
                instance.get_typed_func::<(), ()>(&mut store, "_start")?.call(&mut store, ())
            })()),
            Entry::Made { arg, start } => Some((|| {
                group.hooks.thread_started(tid);
                group.teardown.signal.bail_if_ending()?;
                start.call(&mut store, (tid, arg))
            })()),
            Entry::Spawned { arg, started } => {
                let answer = AnswerOnDrop(started);
                let entry = match instantiate_spawned(&group, &mut store) {
                    Ok(f) => f,
                    Err(e) => {
                        let why = group.instantiation_failure(&e);
                        answer.0.set(Err(format!("instantiating thread {tid} failed: {why}")));
                        return None;
                    }
                };
                group.hooks.thread_started(tid);
                answer.0.set(Ok(()));
                Some(group.teardown.signal.bail_if_ending().and_then(|()| entry.call(&mut store, (tid, arg))))
            }
        }
    }));
    let result = match result {
        // A spawned thread that could not be instantiated never existed for the guest
        // (its spawn returned an error) nor for the host (no start or exit callback).
        Ok(None) => {
            drop(store);
            group.give_back_seat(seat);
            group.life.thread_gone(tid);
            return;
        }
        Ok(Some(r)) => Ok(r),
        Err(panic) => Err(panic),
    };
    let how = classify(&group, &result);
    match &how {
        ThreadExit::Returned if tid == 0 => group.finish(RunExit::code(0, 0)),
        ThreadExit::Exited(code) => group.finish(RunExit::code(tid, *code)),
        ThreadExit::Trapped(msg) => group.finish(RunExit::trap(tid, msg.clone())),
        ThreadExit::Returned | ThreadExit::Terminated { .. } => {}
    }
    let store = match &result {
        Ok(Err(e)) => group.keep_for_coredump(tid, store, e, matches!(how, ThreadExit::Trapped(_))),
        _ => Some(store),
    };
    group.give_back_seat(seat);
    drop(store);
    group.hooks.thread_exited(tid, &how);
    group.life.thread_gone(tid);
}

impl Group {
    /// Starts the main thread, which instantiates the module in `store` (made by
    /// [`Group::new_store`] for tid 0) and calls `_start`.
    pub(crate) fn start_main(self: &Arc<Self>, store: Store<StoreData>) -> Result<()> {
        self.run_on_pool(store, Entry::Main, None).context("starting the main thread")
    }

    /// Starts a thread running `wasi_thread_start(tid, arg)`. Returns the new thread's
    /// id, or a negative WASI errno; `Err` only when the run ended meanwhile.
    pub(crate) fn spawn(self: &Arc<Self>, spawner: i32, arg: i32) -> wasmtime::Result<i32> {
        if !self.program.can_spawn {
            self.hooks.diagnose(spawner, "thread-spawn failed: the module has no usable `wasi_thread_start` export");
            return Ok(-ENOSYS);
        }
        let threads = &self.budgets.threads;
        if threads.limit() == 0 {
            self.hooks.diagnose(spawner, "thread-spawn failed: the run's thread limit is 0");
            return Ok(-EAGAIN);
        }
        // At the limit, give a thread that is just leaving (its joiner already woke up,
        // it is returning from wasm) a moment to give its seat back.
        let seat = self.life.wait_for(&self.teardown, Instant::now() + LIMIT_GRACE, || threads.try_take(1));
        self.teardown.signal.bail_if_ending()?;
        let Some(seat) = seat else {
            let limit = threads.limit();
            self.hooks
                .diagnose(spawner, &format!("thread-spawn failed: the run's limit of {limit} threads is reached"));
            return Ok(-EAGAIN);
        };
        let next =
            self.next_tid.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| (t <= MAX_TID).then_some(t + 1));
        let Ok(tid) = next else {
            self.give_back_seat(Some(seat));
            self.hooks.diagnose(spawner, "thread-spawn failed: all thread ids of the run are used");
            return Ok(-EAGAIN);
        };
        super::heap::make_room();
        let mut store = match self.new_store(tid) {
            Ok(store) => store,
            Err(why) => {
                self.give_back_seat(Some(seat));
                self.hooks.diagnose(spawner, &format!("thread-spawn failed: {why}"));
                return Ok(-EAGAIN);
            }
        };
        self.life.add_thread(&self.teardown, tid)?;
        let pool = &self.program.pool;
        let here = crate::pool::stack_left().is_some_and(|left| left + SPAWNER_STACK_SLACK >= pool.stack_size());
        let (entry, started) = if here {
            match self.instantiate_here(tid, &mut store) {
                Ok(start) => (Entry::Made { arg, start }, None),
                Err(why) => {
                    drop(store);
                    self.give_back_seat(Some(seat));
                    self.life.thread_gone(tid);
                    self.teardown.signal.bail_if_ending()?;
                    self.hooks.diagnose(spawner, &format!("thread-spawn failed: {why}"));
                    return Ok(-EAGAIN);
                }
            }
        } else {
            let started = Arc::new(Started::default());
            (Entry::Spawned { arg, started: started.clone() }, Some(started))
        };
        // On error the job, and the seat with it, was dropped unrun.
        if let Err(e) = self.run_on_pool(store, entry, Some(seat)) {
            self.life.notify();
            self.life.thread_gone(tid);
            self.hooks.diagnose(spawner, &format!("thread-spawn failed: {e:#}"));
            return Ok(-EAGAIN);
        }
        // The new thread counts itself out if its instance cannot be made.
        match started.map(|s| s.wait(&self.teardown)).transpose()? {
            None | Some(Ok(())) => Ok(tid),
            Some(Err(why)) => {
                self.hooks.diagnose(spawner, &format!("thread-spawn failed: {why}"));
                Ok(-EAGAIN)
            }
        }
    }

    /// Makes thread `tid`'s instance in `store` on the spawner's thread (running the
    /// module's start function here); `Err` says why it could not be made.
    fn instantiate_here(&self, tid: i32, store: &mut Store<StoreData>) -> Result<TypedFunc<(i32, i32), ()>, String> {
        match catch_unwind(AssertUnwindSafe(|| instantiate_spawned(self, store))) {
            Ok(Ok(start)) => Ok(start),
            Ok(Err(e)) => Err(format!("instantiating thread {tid} failed: {}", self.instantiation_failure(&e))),
            Err(panic) => Err(format!("instantiating thread {tid} failed: host panic: {}", panic_message(&*panic))),
        }
    }

    /// Why an instantiation failed: the run ending, or the trap with its backtrace.
    fn instantiation_failure(&self, e: &wasmtime::Error) -> String {
        let stopped = e.is::<Terminated>() || self.teardown.is_interruption(e.downcast_ref::<Trap>());
        if stopped {
            "the run ended".to_string()
        } else {
            trap_message(self, e)
        }
    }

    /// Gives a spawned thread's seat back to the thread budget, and tells a spawn waiting
    /// for one.
    fn give_back_seat(&self, seat: Option<Share>) {
        if let Some(seat) = seat {
            drop(seat);
            self.life.seat_returned();
        }
    }

    /// Runs a guest thread on a thread of the pool. On error nothing was started.
    fn run_on_pool(self: &Arc<Self>, store: Store<StoreData>, entry: Entry, seat: Option<Share>) -> Result<()> {
        let group = self.clone();
        let joinable = self.life.unjoined.enter();
        self.program
            .pool
            .execute(move || {
                run_thread(group, store, entry, seat);
                // Everything the thread held of the run (its store, the group) is gone now.
                drop(joinable);
            })
            .context("the OS refused a new thread")
            .kind(ErrorKind::Limit)?;
        Ok(())
    }

    /// The wasm backtrace an error carries, in the user's module's offsets.
    fn backtrace(&self, err: &wasmtime::Error) -> Option<String> {
        let bt = err.downcast_ref::<WasmBacktrace>().filter(|bt| !bt.frames().is_empty())?;
        Some(crate::trace::render(&crate::trace::frames(bt.frames(), &self.program.offsets)))
    }
}
