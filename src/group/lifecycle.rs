//! A run's life: how it ended (the first event wins), which threads still exist, who
//! supervises it, and the one outcome every waiter gets once every thread is joined. The
//! stop side (waking and interrupting threads) is [`Teardown`]'s.
//!
//! A cancel may also be *asked* ([`Lifecycle::ask_cancel`]) from a signal handler: that
//! sets a flag and rings the supervisor's bell (a futex word), both async-signal-safe,
//! and the supervisor ends the run. From the moment it is asked, the run's outcome is
//! the cancel unless the run had already ended.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Teardown;
use crate::exit::{ExitKind, RunExit};

/// The bookkeeping of a run's life, and the condition variables that signal its changes.
///
/// A thread's end wakes nobody unless it was the last one (or gave a seat back to a
/// spawn waiting at the thread limit): with thousands of threads ending at once, a
/// supervisor woken by each would do O(threads) work per thread.
pub(super) struct Lifecycle {
    state: Mutex<State>,
    /// The run ended, its last thread left, its outcome was published, or a kick.
    cond: Condvar,
    /// A cancel was asked ([`Lifecycle::ask_cancel`]).
    cancel_asked: AtomicBool,
    /// The supervisor's bell: bumped when the run ends or a cancel is asked, and waited
    /// on (a futex) by the supervisor until the run ends.
    bell: AtomicU32,
    /// A seat of the thread budget was given back, or the run ended: what a spawn at the
    /// thread limit waits for.
    seats: Condvar,
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
            cancel_asked: AtomicBool::new(false),
            bell: AtomicU32::new(0),
            seats: Condvar::new(),
            unjoined: Arc::default(),
        }
    }

    /// Records how the run ended (the first call wins) and starts stopping every thread.
    pub(super) fn finish(&self, teardown: &Teardown, exit: RunExit) {
        {
            let mut st = self.state.lock();
            if st.first_exit.is_none() {
                // A cancel asked before this end came first.
                let cancelled = self.cancel_asked.load(Ordering::SeqCst);
                st.first_exit = Some(if cancelled { RunExit::host(ExitKind::Cancelled) } else { exit });
            }
            teardown.begin();
        }
        self.ring();
        self.kick(teardown);
    }

    /// Asks for the run to be cancelled: the supervisor ends it (or, when nobody
    /// supervises it yet, whoever waits for it next). Async-signal-safe: an atomic store,
    /// an atomic add and a `futex` wake, with `errno` kept; no lock, no allocation.
    pub(super) fn ask_cancel(&self) {
        self.cancel_asked.store(true, Ordering::SeqCst);
        self.ring();
    }

    /// Wakes the supervisor waiting for the run to end (async-signal-safe).
    fn ring(&self) {
        self.bell.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `__errno_location` gives the calling thread's errno, which a signal
        // handler must leave as it found it. FUTEX_WAKE on the address of a live
        // `AtomicU32` reads nothing else; it fails only for a bad address.
        unsafe {
            let errno = libc::__errno_location();
            let saved = *errno;
            libc::syscall(libc::SYS_futex, self.bell.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX);
            *errno = saved;
        }
    }

    /// Waits until the bell is no longer at `rung` or `timeout` passes (`None`: no
    /// timeout); may return early.
    fn wait_bell(&self, rung: u32, timeout: Option<Duration>) {
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: t.subsec_nanos().into(),
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
        // SAFETY: FUTEX_WAIT on the address of a live `AtomicU32`, with a relative
        // timeout that lives across the call (or none). It returns at once if the word
        // is no longer `rung`, on a wake, a signal or the timeout.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.bell.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                rung,
                ts_ptr,
            );
        }
    }

    /// Ends the run as cancelled if a cancel was asked and it has not ended yet.
    fn take_cancel(&self, teardown: &Teardown) {
        if self.cancel_asked.load(Ordering::SeqCst) {
            self.finish(teardown, RunExit::host(ExitKind::Cancelled));
        }
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
        self.seats.notify_all();
    }

    /// Wakes a spawn waiting at the thread limit after a seat was given back.
    pub(super) fn seat_returned(&self) {
        drop(self.state.lock());
        self.seats.notify_all();
    }

    /// Calls `take` until it gives something, waiting for a [`Lifecycle::seat_returned`]
    /// or [`Lifecycle::notify`] between calls, until `until` (then it calls `take` a last time) or until the run
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
            if self.seats.wait_until(&mut st, until).timed_out() {
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
        let mut st = self.state.lock();
        st.live.remove(&tid);
        // Only the supervisor waits for this, and only for the last one.
        if st.live.is_empty() {
            self.cond.notify_all();
        }
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
        // Until the run ends: the bell rings for every end (`finish`) and every cancel
        // asked, so reading it before looking leaves no wake-up unseen.
        loop {
            let rung = self.bell.load(Ordering::SeqCst);
            if self.state.lock().first_exit.is_some() {
                break;
            }
            self.take_cancel(teardown);
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                self.finish(teardown, RunExit::host(ExitKind::Timeout));
                continue;
            }
            self.wait_bell(rung, left);
        }
        let mut st = self.state.lock();
        // Kick until every thread has left; a thread that checked `ending` just before it
        // was set may have started blocking after the previous kick. A kick walks every
        // thread's wait slot, so it is repeated on a timer (50 µs, doubling up to the
        // interrupt tick), never on each thread's exit.
        let give_up = Instant::now() + teardown.grace;
        let mut pause = Duration::from_micros(50);
        while !st.live.is_empty() && Instant::now() < give_up {
            drop(st);
            self.kick(teardown);
            st = self.state.lock();
            let next_kick = (Instant::now() + pause).min(give_up);
            while !st.live.is_empty() && !self.cond.wait_until(&mut st, next_kick).timed_out() {}
            pause = (pause * 2).min(teardown.interrupt_tick);
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
        if !ended {
            self.take_cancel(teardown);
        }
        let ended = ended || self.cancel_asked.load(Ordering::SeqCst);
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
        let mut running = self.0.running.lock();
        *running -= 1;
        // Only `join_all` waits, and only for the last one.
        if *running == 0 {
            self.0.cond.notify_all();
        }
    }
}
