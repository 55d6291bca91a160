//! What an instance (`crate::instance`) needs of its group beyond a run's: the main
//! store instantiated on the host's thread, host threads adopted as guest threads
//! (`module/adopt.rs` says how), export calls counted as running threads, and how a call
//! that failed ends the instance.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use wasmtime::{Store, Trap};
use wasmtime_wasi::I32Exit;

use super::thread::{trap_message, LIMIT_GRACE, MAX_TID};
use super::{Group, StoreData};
use crate::exit::RunExit;
use crate::limits::Share;
use crate::wait::Terminated;

/// The error the `adopted` import returns to unwind a host thread out of
/// `wasi_thread_start` once wasi-libc has set up its thread.
#[derive(Debug)]
pub(crate) struct Adopted;

impl std::fmt::Display for Adopted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("adopted by a host thread")
    }
}
impl std::error::Error for Adopted {}

/// An adoption in progress on the main store: set while the adoption export runs, so its
/// `thread-spawn` hands out a thread id (and a seat of the thread budget) without
/// starting a thread.
#[derive(Default)]
pub(crate) struct AdoptRequest {
    /// The new thread's id, the `thread-spawn` argument and its seat, once spawned.
    pub(crate) spawned: Option<(i32, i32, Share)>,
    /// Why `thread-spawn` refused, when it did.
    pub(crate) refused: Option<String>,
}

impl Group {
    /// Instantiates the module in `store` on the calling thread (running its start
    /// function there).
    pub(crate) fn instantiate(&self, store: &mut Store<StoreData>) -> wasmtime::Result<wasmtime::Instance> {
        self.pre().instantiate(store)
    }

    /// `thread-spawn` for an adoption: a thread id and a seat, no thread. Returns the id
    /// or a negative WASI errno (as `spawn` does).
    pub(crate) fn adopt_spawn(&self, request: &mut AdoptRequest, arg: i32) -> wasmtime::Result<i32> {
        const EAGAIN: i32 = 6;
        let threads = &self.budgets.threads;
        let seat = self.life.wait_for(&self.teardown, Instant::now() + LIMIT_GRACE, || threads.try_take(1));
        self.teardown.signal.bail_if_ending()?;
        let Some(seat) = seat else {
            request.refused = Some(format!("the instance's limit of {} threads is reached", threads.limit()));
            return Ok(-EAGAIN);
        };
        let next = self.next_tid.fetch_update(Relaxed, Relaxed, |t| (t <= MAX_TID).then_some(t + 1));
        let Ok(tid) = next else {
            request.refused = Some("all thread ids of the instance are used".into());
            return Ok(-EAGAIN);
        };
        request.spawned = Some((tid, arg, seat));
        Ok(tid)
    }

    /// Counts thread `tid` as running (an export call, or an adoption), unless the
    /// instance is ending: then its first exit.
    pub(crate) fn enter_call(&self, tid: i32) -> Result<(), RunExit> {
        self.life.add_thread(&self.teardown, tid).map_err(|_| self.ended_exit())
    }

    /// Thread `tid`'s call is over.
    pub(crate) fn leave_call(&self, tid: i32) {
        self.life.call_returned(&self.teardown, tid);
    }

    /// The main thread (tid 0) is idle between calls: the instance's end does not wait
    /// for it.
    pub(crate) fn main_idle(&self) {
        self.life.thread_gone(0);
    }

    /// The first exit of an instance that ended; a cancel if none is recorded yet (not
    /// reached: callers ask after the end).
    pub(crate) fn ended_exit(&self) -> RunExit {
        self.life.first_exit().unwrap_or_else(|| RunExit::host(crate::exit::ExitKind::Cancelled))
    }

    /// Ends the instance for a call of thread `tid` (in `store`) that failed with `err`
    /// (a trap, a `proc_exit`, or a stop because the instance is ending) and gives the
    /// instance's first exit. A trap goes to the core dump, if the config asks for one:
    /// the thread's stack, and its globals when its trap ended the instance (the store
    /// stays with the instance, so its private memories are left out).
    pub(crate) fn call_failed(&self, tid: i32, store: &mut Store<StoreData>, err: &wasmtime::Error) -> RunExit {
        let stopped = err.is::<Terminated>() || self.teardown.is_interruption(err.downcast_ref::<Trap>());
        if !stopped {
            let exit = match err.downcast_ref::<I32Exit>() {
                Some(code) => RunExit::code(tid, code.0),
                None => RunExit::trap(tid, trap_message(self, err)),
            };
            let trapped = exit.kind == crate::exit::ExitKind::Trap;
            self.finish(exit);
            if let (Some(rec), true) = (&self.coredump, trapped) {
                rec.keep_borrowed(tid, store, err, self.life.ended_by_trap_of(tid), &self.program.offsets);
            }
        }
        self.ended_exit()
    }

    /// Diagnoses a failed adoption of a host thread.
    pub(crate) fn adoption_failed(&self, why: &str) {
        self.hooks.diagnose(0, &format!("a host thread could not become a guest thread: {why}"));
    }
}
