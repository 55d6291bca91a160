//! Teardown: how every thread of a group is stopped, wherever it is, when the run ends.
//!
//! Ending a run sets `ending` and makes the run's interrupt page inaccessible (busy wasm
//! faults at its next interruption point: a function entry or loop head, see
//! `module/rewrite.rs`), then repeatedly *kicks* every thread until all have exited: every
//! thread parked on a `parking_lot_core` queue (a rewritten atomic wait, a WASI sleep, a
//! blocking job) is unparked at the key its [`WaitSlot`] records, and threads polling a
//! descriptor are woken through an eventfd. Each woken thread sees `ending` and leaves
//! with a [`Terminated`] error. Kicks repeat until the threads are gone, which closes the
//! window between a thread checking `ending` and starting to block.
//!
//! Each guest thread owns one [`WaitSlot`] (made with its store, see [`Waiter`]): waiting
//! writes the key it parks on there and nothing shared, so waits of different threads
//! never touch a common lock; the run's list of slots changes only when a thread starts
//! or ends, and only a kick walks it.
//!
//! Every blocking place a guest thread can reach waits through one of the primitives
//! here ([`Teardown::sleep_until`], [`Teardown::run_blocking`], [`Teardown::wait_fd`],
//! [`Teardown::wait_fds`], or a park recorded in its [`WaitSlot`], as
//! `host/atomics.rs` does), so that each has exactly one way to be woken.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use parking_lot_core::{DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN};
use rustix::event::{EventfdFlags, PollFd, PollFlags};

use super::interrupt::InterruptPage;
use crate::pool::Pool;

/// The error a thread leaves with when another thread, or the host, ended its run.
#[derive(Debug)]
pub(crate) struct Terminated;

impl std::fmt::Display for Terminated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("thread terminated because its run ended")
    }
}
impl std::error::Error for Terminated {}

/// Where one guest thread is parked: the `parking_lot_core` key it waits on, 0 when it
/// is not parked. Only its thread writes it; a kick reads it.
#[derive(Default)]
pub(crate) struct WaitSlot {
    key: AtomicUsize,
}

impl WaitSlot {
    /// Records that this thread is about to park at `key` (call before `park`, whose
    /// validation must check [`Teardown::is_ending`]: a kick either sees the key or the
    /// thread sees the run ending).
    pub(crate) fn parking_at(&self, key: usize) {
        self.key.store(key, Ordering::SeqCst);
    }

    /// The thread is no longer parked.
    pub(crate) fn unparked(&self) {
        self.key.store(0, Ordering::SeqCst);
    }

    /// A key of this thread's own to park on: the slot's address, which no other
    /// `parking_lot` user (a lock, another thread's slot, guest memory) parks on.
    fn own_key(&self) -> usize {
        self as *const WaitSlot as usize
    }
}

/// The wait slots of a group's live threads, by tid.
type Slots = Mutex<HashMap<i32, Arc<WaitSlot>>>;

/// A thread's [`WaitSlot`], listed in its group while this lives (it is part of the
/// thread's store, so it goes when the thread ends).
pub(crate) struct Waiter {
    slot: Arc<WaitSlot>,
    tid: i32,
    slots: Arc<Slots>,
}

impl Waiter {
    pub(crate) fn slot(&self) -> &Arc<WaitSlot> {
        &self.slot
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.slots.lock().remove(&self.tid);
    }
}

/// The hand-over between a thread waiting in [`Teardown::run_blocking`] and the pool
/// thread running its job. No `parking_lot` lock inside: its address is a parking key.
struct Blocking<F, T> {
    job: std::sync::Mutex<Option<F>>,
    result: std::sync::Mutex<Option<T>>,
    finished: AtomicBool,
}

impl<F: FnOnce() -> T, T> Blocking<F, T> {
    /// Runs the job if nobody has yet, and publishes its result (none if it panicked).
    fn run(&self) {
        let job = self.job.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(job) = job {
            // The job's captures (the descriptor it holds) are dropped when it returns,
            // before the waiter can see the result.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).ok();
            *self.result.lock().unwrap_or_else(|p| p.into_inner()) = r;
            self.finished.store(true, Ordering::SeqCst);
        }
    }

    fn key(&self) -> usize {
        self as *const Self as usize
    }
}

/// Everything needed to stop the threads of one group.
pub(crate) struct Teardown {
    ending: AtomicBool,
    /// The run's interrupt page (`interrupt.rs`).
    interrupt: InterruptPage,
    /// With epoch interruption (see `EngineConfig::epoch_interruption`): the engine whose
    /// epoch is bumped by each kick, instead of closing the page.
    epoch: Option<wasmtime::Engine>,
    /// While ending, how often threads that have not stopped yet are kicked again.
    pub(super) interrupt_tick: Duration,
    /// The wait slot of every live thread.
    slots: Arc<Slots>,
    /// Becomes readable when the run ends; created on the first descriptor wait.
    wake_fd: OnceLock<OwnedFd>,
}

impl Teardown {
    pub(super) fn new(interrupt: InterruptPage, epoch: Option<wasmtime::Engine>, interrupt_tick: Duration) -> Teardown {
        Teardown {
            ending: AtomicBool::new(false),
            interrupt,
            epoch,
            interrupt_tick,
            slots: Arc::default(),
            wake_fd: OnceLock::new(),
        }
    }

    /// True once the run has ended: every thread must stop.
    pub(crate) fn is_ending(&self) -> bool {
        self.ending.load(Ordering::SeqCst)
    }

    /// `Err(Terminated)` once the run has ended: what every blocking place returns after
    /// it wakes, so the thread unwinds out of wasm.
    pub(crate) fn bail_if_ending(&self) -> wasmtime::Result<()> {
        if self.is_ending() {
            Err(wasmtime::Error::new(Terminated))
        } else {
            Ok(())
        }
    }

    /// Marks the run as ending and closes the interrupt page. The caller kicks next.
    pub(super) fn begin(&self) {
        if self.ending.swap(true, Ordering::SeqCst) || self.epoch.is_some() {
            return;
        }
        self.interrupt.close();
    }

    /// True when stores stop busy wasm with epoch deadlines (see `Group::new_store`).
    pub(super) fn uses_epochs(&self) -> bool {
        self.epoch.is_some()
    }

    /// True when `trap` is a thread reaching an interruption point after the run ended.
    pub(crate) fn is_interruption(&self, trap: Option<&wasmtime::Trap>) -> bool {
        self.is_ending() && matches!(trap, Some(wasmtime::Trap::MemoryOutOfBounds))
    }

    /// Wakes every thread wherever it blocks so it can notice the run is ending.
    pub(super) fn kick(&self) {
        if let Some(engine) = &self.epoch {
            engine.increment_epoch();
        }
        let keys: Vec<usize> =
            self.slots.lock().values().map(|s| s.key.load(Ordering::SeqCst)).filter(|&k| k != 0).collect();
        for key in keys {
            // SAFETY: keys recorded in wait slots: addresses inside guest memory (atomic
            // waits), of a wait slot or of a blocking job's hand-over, which no other
            // parking_lot user parks on. An unpark of a key nobody waits on does nothing.
            unsafe { parking_lot_core::unpark_all(key, DEFAULT_UNPARK_TOKEN) };
        }
        if let Some(fd) = self.wake_fd.get() {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }

    /// Lists the wait slot of thread `tid` (made with its store) until the returned
    /// [`Waiter`] is dropped.
    pub(super) fn waiter(&self, tid: i32) -> Waiter {
        let slot = Arc::new(WaitSlot::default());
        self.slots.lock().insert(tid, slot.clone());
        Waiter { slot, tid, slots: self.slots.clone() }
    }

    /// Parks the thread of `slot` at `key` while `valid()` holds and the run is not
    /// ending, until `deadline` (forever for `None`) or an unpark of `key`.
    ///
    /// # Safety
    /// `key` is an address no `parking_lot` user other than this file's parks on.
    unsafe fn park(&self, slot: &WaitSlot, key: usize, valid: impl FnOnce() -> bool, deadline: Option<Instant>) {
        slot.parking_at(key);
        // The check of `ending` runs under the queue's lock, like a kick's unpark of this
        // key, so the thread either sees the run ending or is queued when it is woken.
        let validate = || !self.is_ending() && valid();
        // SAFETY: the caller's guarantee on `key`; the callbacks do not panic or call
        // into parking_lot.
        unsafe { parking_lot_core::park(key, validate, || {}, |_, _| {}, DEFAULT_PARK_TOKEN, deadline) };
        slot.unparked();
    }

    /// Sleeps until `deadline` (forever for `None`), or until the run ends:
    /// `Err(Terminated)`. May return early; callers re-check their own condition.
    /// `slot` is the calling thread's.
    pub(crate) fn sleep_until(&self, slot: &WaitSlot, deadline: Option<Instant>) -> wasmtime::Result<()> {
        // SAFETY: the slot's own address (see `WaitSlot::own_key`).
        unsafe { self.park(slot, slot.own_key(), || true, deadline) };
        self.bail_if_ending()
    }

    /// Runs `job`, which may block in the kernel for long (`fsync` on slow storage), on a
    /// thread of `pool`, and waits for it or for the run to end: `Err(Terminated)` then,
    /// as promptly as an atomic wait, while the job finishes on its own and drops what it
    /// holds. `slot` is the calling thread's, so a thread has at most one job in flight.
    /// When the pool has [`MAX_BLOCKING`](crate::pool) jobs of this kind running already,
    /// or no thread to give, the job runs here, bounded only by the teardown grace.
    pub(crate) fn run_blocking<T, F>(&self, slot: &WaitSlot, pool: &Arc<Pool>, job: F) -> wasmtime::Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.bail_if_ending()?;
        let hand = Arc::new(Blocking {
            job: std::sync::Mutex::new(Some(job)),
            result: std::sync::Mutex::new(None),
            finished: AtomicBool::new(false),
        });
        let theirs = hand.clone();
        let started = pool.execute_blocking(move || {
            theirs.run();
            // SAFETY: the hand-over's address (alive: `theirs` holds it), which only
            // `park` below parks on.
            unsafe { parking_lot_core::unpark_all(theirs.key(), DEFAULT_UNPARK_TOKEN) };
        });
        if started.is_err() {
            hand.run();
        }
        while !hand.finished.load(Ordering::SeqCst) {
            // SAFETY: the hand-over's address (see above), alive while `hand` is.
            unsafe { self.park(slot, hand.key(), || !hand.finished.load(Ordering::SeqCst), None) };
            self.bail_if_ending()?;
        }
        let result = hand.result.lock().unwrap_or_else(|p| p.into_inner()).take();
        result.ok_or_else(|| wasmtime::format_err!("host panic in a blocking system call"))
    }

    /// The eventfd that becomes readable when the run ends.
    fn wake_fd(&self) -> wasmtime::Result<BorrowedFd<'_>> {
        if self.wake_fd.get().is_none() {
            let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| wasmtime::format_err!("creating an eventfd: {e}"))?;
            let _ = self.wake_fd.set(fd);
        }
        Ok(self.wake_fd.get().expect("set above").as_fd())
    }

    /// Blocks until `fd` is readable (`PollFlags::IN`) or writable (`OUT`): true; until
    /// `timeout` passes: false; or until the run ends: `Err(Terminated)`.
    pub(crate) fn wait_fd(
        &self,
        fd: BorrowedFd<'_>,
        flags: PollFlags,
        timeout: Option<Duration>,
    ) -> wasmtime::Result<bool> {
        let wake = self.wake_fd()?;
        let timeout = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        loop {
            self.bail_if_ending()?;
            let mut fds = [PollFd::new(&fd, flags), PollFd::new(&wake, PollFlags::IN)];
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => wasmtime::bail!("polling a standard stream: {e}"),
            }
            if !fds[1].revents().is_empty() {
                return Err(wasmtime::Error::new(Terminated));
            }
            self.bail_if_ending()?;
            if !fds[0].revents().is_empty() {
                return Ok(true);
            }
            if timeout.is_some() {
                return Ok(false);
            }
        }
    }

    /// Blocks until at least one of `fds` is ready for what it asks (`revents` of each
    /// entry are set, as by `poll(2)`): returns how many are; until `deadline` passes
    /// (forever for `None`): 0; or until the run ends: `Err(Terminated)`. A deadline
    /// already past still polls once, without waiting.
    pub(crate) fn wait_fds<'f>(&'f self, fds: &mut [PollFd<'f>], deadline: Option<Instant>) -> wasmtime::Result<usize> {
        let wake = self.wake_fd()?;
        let mut all: Vec<PollFd<'f>> = Vec::with_capacity(fds.len() + 1);
        all.extend(fds.iter().cloned());
        all.push(PollFd::from_borrowed_fd(wake, PollFlags::IN));
        loop {
            self.bail_if_ending()?;
            // Recomputed on every round, so a signal (EINTR) does not restart the wait.
            let timeout = deadline.map(|t| {
                let d = t.saturating_duration_since(Instant::now());
                rustix::time::Timespec {
                    tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
                    tv_nsec: d.subsec_nanos() as _,
                }
            });
            let ready = match rustix::event::poll(&mut all, timeout.as_ref()) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => wasmtime::bail!("polling {} descriptors: {e}", fds.len()),
            };
            let (woken, polled) = all.split_last().expect("holds the wake fd");
            if !woken.revents().is_empty() {
                return Err(wasmtime::Error::new(Terminated));
            }
            self.bail_if_ending()?;
            if ready > 0 || deadline.is_some_and(|t| Instant::now() >= t) {
                for (out, got) in fds.iter_mut().zip(polled) {
                    *out = got.clone();
                }
                return Ok(ready);
            }
        }
    }
}

impl super::Group {
    /// [`Teardown::run_blocking`] on the run's pool.
    pub(crate) fn run_blocking<T, F>(&self, slot: &WaitSlot, job: F) -> wasmtime::Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.teardown.run_blocking(slot, &self.pool, job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn teardown() -> Arc<Teardown> {
        let mut config = wasmtime::Config::new();
        config.wasm_threads(true).shared_memory(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let page = wasmtime::SharedMemory::new(&engine, wasmtime::MemoryType::shared(1, 1)).unwrap();
        Arc::new(Teardown::new(InterruptPage::whole(page), None, Duration::from_millis(1)))
    }

    /// Ends the run and kicks until `done` yields what the waiting thread returned, as
    /// the supervisor does; panics (instead of hanging) after 10 s.
    fn end_and_collect<R>(t: &Teardown, done: &mpsc::Receiver<R>) -> R {
        t.begin();
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            t.kick();
            if let Ok(r) = done.recv_timeout(Duration::from_millis(1)) {
                return r;
            }
            assert!(Instant::now() < give_up, "the waiting thread was not stopped");
        }
    }

    /// Sends on its channel when dropped: tells when a job let go of what it held.
    struct Held(mpsc::Sender<()>);
    impl Drop for Held {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    #[test]
    fn a_blocking_job_returns_its_result_to_the_waiting_thread() {
        let t = teardown();
        let pool = Pool::new(256 << 10);
        let waiter = t.waiter(1);
        let got = t.run_blocking(waiter.slot(), &pool, || 6 * 7).unwrap();
        assert_eq!(got, 42);
        assert_eq!(waiter.slot().key.load(Ordering::SeqCst), 0, "unparked");
        pool.shutdown();
    }

    /// A job that panics does not leave its waiter parked: the call fails (a trap of
    /// that thread, not `Terminated`).
    #[test]
    fn a_panicking_blocking_job_fails_the_call_instead_of_hanging_it() {
        let t = teardown();
        let pool = Pool::new(256 << 10);
        let waiter = t.waiter(1);
        let r: wasmtime::Result<()> = t.run_blocking(waiter.slot(), &pool, || panic!("deliberate"));
        let e = r.unwrap_err();
        assert!(!e.is::<Terminated>(), "{e}");
        pool.shutdown();
    }

    /// A job that blocks until the test lets it go: teardown stops the waiting thread
    /// with `Terminated` while the job still runs; the job then finishes on its own and
    /// drops what it held.
    #[test]
    fn teardown_stops_a_thread_waiting_for_a_slow_blocking_job() {
        let t = teardown();
        let pool = Pool::new(256 << 10);
        let (release, released) = mpsc::channel::<()>();
        let (held_tx, dropped) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        let (out_tx, out) = mpsc::channel();
        let waiting = {
            let (t, pool) = (t.clone(), pool.clone());
            std::thread::spawn(move || {
                let waiter = t.waiter(1);
                let held = Held(held_tx);
                let r = t.run_blocking(waiter.slot(), &pool, move || {
                    let _held = held;
                    started_tx.send(()).unwrap();
                    let _ = released.recv();
                    7
                });
                out_tx.send(r.map_err(|e| e.is::<Terminated>())).unwrap();
            })
        };
        started.recv_timeout(Duration::from_secs(10)).expect("the job started");
        assert_eq!(end_and_collect(&t, &out), Err(true), "the waiting thread leaves with Terminated");
        waiting.join().unwrap();
        assert!(dropped.try_recv().is_err(), "the job is still running");
        release.send(()).unwrap();
        dropped.recv_timeout(Duration::from_secs(10)).expect("the job finished and dropped what it held");
        pool.shutdown();
    }

    #[test]
    fn teardown_wakes_a_thread_sleeping_forever() {
        let t = teardown();
        let (out_tx, out) = mpsc::channel();
        let sleeper = {
            let t = t.clone();
            std::thread::spawn(move || {
                let waiter = t.waiter(3);
                // Early returns (none expected) just sleep again, as callers do.
                let r = loop {
                    match t.sleep_until(waiter.slot(), None) {
                        Ok(()) => continue,
                        Err(e) => break e.is::<Terminated>(),
                    }
                };
                out_tx.send(r).unwrap();
            })
        };
        assert!(end_and_collect(&t, &out));
        sleeper.join().unwrap();
        assert!(t.slots.lock().is_empty(), "the sleeper's slot left the list with it");
    }
}
