//! A run's life: how it ended (the first event wins), which threads still exist, who
//! supervises it, and the one outcome every waiter gets once every thread is joined. The
//! stop side (waking and interrupting threads) is [`Teardown`]'s.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Teardown;
use crate::exit::{ExitKind, RunExit};

/// The bookkeeping of a run's life, and the condition variable every change of it (and
/// every kick) signals.
pub(super) struct Lifecycle {
    state: Mutex<State>,
    cond: Condvar,
    /// Guest thread bodies on the pool that have not finished: what the supervisor joins.
    pub(super) unjoined: Arc<Unjoined>,
}

#[derive(Default)]
struct State {
    /// The first event that ended the run: it decides the outcome.
    first_exit: Option<RunExit>,
    /// Threads that exist (main included) and have not finished their exit callback.
    live: BTreeSet<i32>,
    /// Someone (a waiter or the background supervisor) is running the supervision.
    supervising: bool,
    /// `first_exit`, set once every thread has been joined.
    joined_exit: Option<RunExit>,
}

impl Lifecycle {
    /// The life of a run whose main thread (tid 0) is about to start.
    pub(super) fn new() -> Lifecycle {
        Lifecycle {
            state: Mutex::new(State { live: BTreeSet::from([0]), ..State::default() }),
            cond: Condvar::new(),
            unjoined: Arc::default(),
        }
    }

    /// Records how the run ended (the first call wins) and starts stopping every thread.
    pub(super) fn finish(&self, teardown: &Teardown, exit: RunExit) {
        {
            let mut st = self.state.lock();
            if st.first_exit.is_none() {
                st.first_exit = Some(exit);
            }
            teardown.begin();
        }
        self.kick(teardown);
    }

    /// Wakes every thread wherever it blocks, and whoever waits on the run's state.
    pub(super) fn kick(&self, teardown: &Teardown) {
        teardown.kick();
        self.notify();
    }

    /// Wakes whoever waits on the run's state (a spawn at the thread limit, the
    /// supervisor) after something they wait for changed outside it.
    pub(super) fn notify(&self) {
        // Taking the lock orders this notify after any waiter's check.
        drop(self.state.lock());
        self.cond.notify_all();
    }

    /// Calls `take` until it gives something, waiting for a [`Lifecycle::notify`]
    /// between calls, until `until` (then it calls `take` a last time) or until the run
    /// ends.
    pub(super) fn wait_for<S>(
        &self,
        teardown: &Teardown,
        until: Instant,
        mut take: impl FnMut() -> Option<S>,
    ) -> Option<S> {
        let mut st = self.state.lock();
        loop {
            if let Some(s) = take() {
                return Some(s);
            }
            if teardown.signal.is_ending() {
                return None;
            }
            if self.cond.wait_until(&mut st, until).timed_out() {
                return take();
            }
        }
    }

    /// Counts thread `tid` as existing, unless the run is ending (`Err`).
    pub(super) fn add_thread(&self, teardown: &Teardown, tid: i32) -> wasmtime::Result<()> {
        let mut st = self.state.lock();
        // Under the lock that `finish` ends the run under: a thread is either counted
        // before the run ends, or not started.
        teardown.signal.bail_if_ending()?;
        st.live.insert(tid);
        Ok(())
    }

    /// Called by each thread as its very last act on the run.
    pub(super) fn thread_gone(&self, tid: i32) {
        self.state.lock().live.remove(&tid);
        self.cond.notify_all();
    }

    /// How the run ended, once it has.
    pub(super) fn first_exit(&self) -> Option<RunExit> {
        self.state.lock().first_exit.clone()
    }

    /// Called when an export call of thread `tid` returns: as [`Lifecycle::thread_gone`],
    /// but waking the supervisor only when the run is ending (it waits for nothing else
    /// of a call; it waits with timeouts, so a call that returns just as the end begins
    /// is seen within a tick). Calls come and go often: a wake-up each would cost a
    /// context switch per call.
    pub(super) fn call_returned(&self, teardown: &Teardown, tid: i32) {
        self.state.lock().live.remove(&tid);
        if teardown.signal.is_ending() {
            self.cond.notify_all();
        }
    }

    /// True when the run ended by a trap of thread `tid`.
    pub(super) fn ended_by_trap_of(&self, tid: i32) -> bool {
        let st = self.state.lock();
        st.first_exit.as_ref().is_some_and(|e| e.kind == ExitKind::Trap && e.tid == tid)
    }

    /// Waits for the run to end (or `deadline` to pass: a timeout), then kicks its
    /// threads until every one has left or the teardown grace ran out. The outcome lists the
    /// threads that did not leave in time as `unstopped`.
    pub(super) fn stop(&self, teardown: &Teardown, deadline: Option<Instant>) -> RunExit {
        let mut st = self.state.lock();
        while st.first_exit.is_none() {
            match deadline {
                Some(d) => {
                    if self.cond.wait_until(&mut st, d).timed_out() && st.first_exit.is_none() {
                        drop(st);
                        self.finish(teardown, RunExit::host(ExitKind::Timeout));
                        st = self.state.lock();
                    }
                }
                None => self.cond.wait(&mut st),
            }
        }
        // Kick until every thread has left; a thread that checked `ending` just before it
        // was set may have started blocking after the previous kick.
        let give_up = Instant::now() + teardown.grace;
        let mut pause = Duration::from_micros(50);
        while !st.live.is_empty() && Instant::now() < give_up {
            drop(st);
            self.kick(teardown);
            st = self.state.lock();
            if !st.live.is_empty() {
                self.cond.wait_for(&mut st, pause);
                pause = (pause * 2).min(teardown.interrupt_tick);
            }
        }
        let mut exit = st.first_exit.clone().expect("first_exit is set above");
        exit.unstopped = st.live.iter().copied().collect();
        exit
    }

    /// Kicks the threads still there every tick until they are gone.
    pub(super) fn keep_kicking(&self, teardown: &Teardown) {
        let mut st = self.state.lock();
        while !st.live.is_empty() {
            drop(st);
            self.kick(teardown);
            st = self.state.lock();
            self.cond.wait_for(&mut st, teardown.interrupt_tick.max(Duration::from_millis(10)));
        }
    }

    /// Records `exit` as the outcome every waiter gets, unless one is recorded already,
    /// and returns the recorded one.
    pub(super) fn publish(&self, exit: RunExit) -> RunExit {
        let exit = self.state.lock().joined_exit.get_or_insert(exit).clone();
        self.cond.notify_all();
        exit
    }

    /// Claims the supervision for a supervisor of its own (see [`Lifecycle::wait`]).
    pub(super) fn claim_supervision(&self) {
        self.state.lock().supervising = true;
    }

    /// Gives back a claim whose supervisor did not start.
    pub(super) fn release_supervision(&self) {
        self.state.lock().supervising = false;
    }

    /// Blocks until the outcome is published, running `supervise` (which publishes it) if
    /// nobody supervises yet.
    pub(super) fn wait(&self, supervise: impl Fn() -> RunExit) -> RunExit {
        let mut st = self.state.lock();
        loop {
            if let Some(exit) = &st.joined_exit {
                return exit.clone();
            }
            if !st.supervising {
                st.supervising = true;
                drop(st);
                supervise();
                st = self.state.lock();
                continue;
            }
            self.cond.wait(&mut st);
        }
    }

    /// The outcome if it is published. When nobody supervises the run, this also
    /// enforces `deadline` and, once the run has ended, kicks the threads and, when they
    /// are all gone, supervises (`supervise`) to join them.
    pub(super) fn try_wait(
        &self,
        teardown: &Teardown,
        deadline: Option<Instant>,
        supervise: impl Fn() -> RunExit,
    ) -> Option<RunExit> {
        let st = self.state.lock();
        if st.joined_exit.is_some() || st.supervising {
            return st.joined_exit.clone();
        }
        let ended = st.first_exit.is_some();
        drop(st);
        if !ended && deadline.is_some_and(|d| Instant::now() >= d) {
            self.finish(teardown, RunExit::host(ExitKind::Timeout));
        } else if ended {
            self.kick(teardown);
        }
        let st = self.state.lock();
        if st.first_exit.is_some() && st.live.is_empty() && !st.supervising {
            drop(st);
            return Some(self.wait(supervise));
        }
        None
    }
}

/// Counts the guest thread bodies of a run that are on the pool and have not finished:
/// what the supervisor joins. O(1) per thread however many threads a run spawns over its
/// life.
#[derive(Default)]
pub(super) struct Unjoined {
    running: Mutex<usize>,
    cond: Condvar,
}

/// One thread body on the pool; dropping it (when the body is done, and has dropped what
/// it held of the run) counts it joined.
pub(super) struct Joinable(Arc<Unjoined>);

impl Unjoined {
    pub(super) fn enter(self: &Arc<Self>) -> Joinable {
        *self.running.lock() += 1;
        Joinable(self.clone())
    }

    /// Blocks until every body has finished.
    pub(super) fn join_all(&self) {
        let mut running = self.running.lock();
        while *running > 0 {
            self.cond.wait(&mut running);
        }
    }
}

impl Drop for Joinable {
    fn drop(&mut self) {
        *self.0.running.lock() -= 1;
        self.0.cond.notify_all();
    }
}
