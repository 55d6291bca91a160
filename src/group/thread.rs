//! The body of every guest thread: call into wasm, classify how it ended, end the run if
//! the thread's end ends the run, report through the exit callback, leave.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use wasmtime::{Store, Trap, TypedFunc, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use parking_lot::{Condvar, Mutex};

use super::{Group, StoreData};
use crate::exit::{panic_message, RunExit, ThreadExit};
use crate::wait::Terminated;

/// The export that runs a spawned thread, fixed by the wasi-threads proposal.
pub(crate) const THREAD_START: &str = "wasi_thread_start";

/// What a thread runs: for the main thread, instantiation (which runs the module's start
/// function, if any) and `_start`; for the others, instantiation and
/// `wasi_thread_start(tid, arg)`, telling the spawner through `started` whether the
/// instance could be made. Either way the instance is made on the thread that runs it, so
/// a start function never runs on another thread's native stack.
pub(super) enum Entry {
    Main,
    Spawned { arg: i32, started: Arc<Started> },
}

/// How a spawned thread's instantiation went, for the spawner waiting on it.
#[derive(Default)]
pub(super) struct Started {
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
    pub(super) fn wait(&self, teardown: &super::Teardown) -> wasmtime::Result<Result<(), String>> {
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
fn trap_message(group: &Group, err: &wasmtime::Error) -> String {
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

impl Group {
    /// The wasm backtrace an error carries, in the user's module's offsets.
    fn backtrace(&self, err: &wasmtime::Error) -> Option<String> {
        let bt = err.downcast_ref::<WasmBacktrace>().filter(|bt| !bt.frames().is_empty())?;
        Some(crate::trace::render(&crate::trace::frames(bt.frames(), &self.offsets)))
    }
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

fn run_thread(group: Arc<Group>, mut store: Store<StoreData>, entry: Entry) {
    block_sigpipe();
    let tid = store.data().tid;
    let result = catch_unwind(AssertUnwindSafe(|| -> Option<wasmtime::Result<()>> {
        match entry {
            Entry::Main => Some((|| {
                if let Some(cb) = &group.on_thread_start {
                    cb(tid);
                }
                group.teardown.signal.bail_if_ending()?;
                // Here, not on the host's thread: a start function that never returns is
                // then stopped by timeout or cancel like any guest code.
                let instance = group.pre().instantiate(&mut store)?;
                instance.get_typed_func::<(), ()>(&mut store, "_start")?.call(&mut store, ())
            })()),
            Entry::Spawned { arg, started } => {
                let answer = AnswerOnDrop(started);
                let entry = match instantiate_spawned(&group, &mut store) {
                    Ok(f) => f,
                    Err(e) => {
                        let stopped = e.is::<Terminated>() || group.teardown.is_interruption(e.downcast_ref::<Trap>());
                        let why = if stopped { "the run ended".to_string() } else { trap_message(&group, &e) };
                        answer.0.set(Err(format!("instantiating thread {tid} failed: {why}")));
                        return None;
                    }
                };
                if let Some(cb) = &group.on_thread_start {
                    cb(tid);
                }
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
            group.thread_left_wasm();
            group.thread_gone(tid);
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
    if let Ok(Err(e)) = &result {
        group.keep_for_coredump(tid, &mut store, e, matches!(how, ThreadExit::Trapped(_)));
    }
    if tid != 0 {
        group.thread_left_wasm();
    }
    drop(store);
    if let Some(cb) = &group.on_thread_exit {
        // A panicking Rust callback must not take the thread's bookkeeping with it.
        let _ = catch_unwind(AssertUnwindSafe(|| cb(tid, &how)));
    }
    group.thread_gone(tid);
}

/// Runs a guest thread on a thread of the pool. On error nothing was started.
pub(super) fn spawn_os_thread(group: &Arc<Group>, store: Store<StoreData>, entry: Entry) -> Result<()> {
    let g = group.clone();
    let job = group.jobs.begin();
    group
        .pool
        .execute(move || {
            run_thread(g, store, entry);
            // Everything the thread held of the run (its store, the group) is gone now.
            drop(job);
        })
        .context("the OS refused a new thread")?;
    Ok(())
}

impl Group {
    /// Starts the main thread, which instantiates the module in `store` (made by
    /// [`Group::new_store`] for tid 0) and calls `_start`.
    pub(crate) fn start_main(self: &Arc<Self>, store: Store<StoreData>) -> Result<()> {
        spawn_os_thread(self, store, Entry::Main).context("starting the main thread")
    }
}
