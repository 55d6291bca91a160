//! Spare threads made ahead of a burst of jobs, off the submitter's path.
//!
//! A guest that starts thousands of threads in a loop submits a job per thread. With no
//! idle thread, the submitter (the spawning guest thread) makes the OS thread itself:
//! about 40 µs of `mmap`, `mprotect` and `clone`, two thirds of its time per spawn.
//! Once jobs keep finding no idle thread ([`STREAK`] misses in a row, each within
//! [`BURST`] of the last), the pool starts a *grower*: a thread that makes spare threads
//! and lists their slots as idle as soon as each exists, before it has even been
//! scheduled, so the submitter's next jobs are handed over at once while the thread
//! creation runs on another CPU. The grower keeps [`SPARES`] slots idle and leaves once
//! it had nothing to make for [`BURST`] (so a steady load that idle threads serve keeps
//! no grower), or the pool shuts down, or the OS refuses a thread. What it made and
//! nobody used leaves after the idle timeout, like any idle thread.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{os_thread, Pool, Slot};

/// Misses (jobs finding no idle thread) this close together are one burst.
pub(super) const BURST: Duration = Duration::from_millis(10);
/// Misses in a row, within a burst, that start a grower: fewer threads than that are
/// started at the submitter's pace, and nothing is made ahead for them.
const STREAK: u32 = 8;
/// Idle slots a grower keeps ahead of the jobs.
const SPARES: usize = 8;
/// How often a grower with enough spares looks again.
const POLL: Duration = Duration::from_micros(50);

/// A pool's bookkeeping of bursts and of its grower.
pub(super) struct Spares {
    /// A grower is running.
    growing: AtomicBool,
    /// Misses in a row within [`BURST`] of each other.
    streak: AtomicU32,
    /// When the last miss was, in nanoseconds since `epoch`.
    last_miss: AtomicU64,
    /// Spare threads made so far.
    made: AtomicU64,
    epoch: Instant,
}

impl Spares {
    pub(super) fn new() -> Spares {
        Spares {
            growing: AtomicBool::new(false),
            streak: AtomicU32::new(0),
            last_miss: AtomicU64::new(0),
            made: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// In a forked child: the parent's grower is not here.
    pub(super) fn forget_parent(&self) {
        self.growing.store(false, Ordering::Release);
        self.streak.store(0, Ordering::Relaxed);
    }

    /// A job was handed to an idle thread: misses since were not in a row.
    pub(super) fn hit(&self) {
        if self.streak.load(Ordering::Relaxed) != 0 {
            self.streak.store(0, Ordering::Relaxed);
        }
    }

    /// A job found no idle thread: true when that makes a burst and no grower runs yet
    /// (the caller then starts one).
    pub(super) fn missed(&self) -> bool {
        let now = self.now();
        let last = self.last_miss.swap(now, Ordering::Relaxed);
        let streak = if now.saturating_sub(last) < BURST.as_nanos() as u64 {
            self.streak.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.streak.store(1, Ordering::Relaxed);
            1
        };
        streak >= STREAK && !self.growing.swap(true, Ordering::AcqRel)
    }
}

impl Pool {
    /// Called after a job that found no idle thread got a thread of its own: starts a
    /// grower if this miss makes a burst (see the module doc). Best effort: with no
    /// thread for it, jobs go on making their own, and the streak starts over.
    pub(super) fn note_miss(self: &Arc<Self>) {
        if !self.spares.missed() {
            return;
        }
        let pool = self.clone();
        if os_thread::spawn(self.thread_stack(), Box::new(move || pool.grow())).is_err() {
            self.stop_growing();
        }
    }

    /// The grower's life: keep [`SPARES`] slots idle until it had nothing to make for
    /// [`BURST`].
    fn grow(self: Arc<Self>) {
        let mut full_since: Option<Instant> = None;
        while !self.shutdown.load(Ordering::SeqCst) {
            if self.idle.lock().len() >= SPARES {
                if full_since.get_or_insert_with(Instant::now).elapsed() >= BURST {
                    break;
                }
                std::thread::sleep(POLL);
                continue;
            }
            full_since = None;
            if !self.add_spare() {
                break;
            }
            self.spares.made.fetch_add(1, Ordering::Relaxed);
        }
        self.stop_growing();
    }

    /// The grower is gone: the next one takes a new streak of misses.
    fn stop_growing(&self) {
        self.spares.streak.store(0, Ordering::Relaxed);
        self.spares.growing.store(false, Ordering::Release);
    }

    /// Makes a thread and lists its slot as idle; false if the OS refused the thread.
    fn add_spare(self: &Arc<Self>) -> bool {
        let slot = Arc::new(Slot::default());
        let (pool, its) = (self.clone(), slot.clone());
        if os_thread::spawn(self.thread_stack(), Box::new(move || pool.work(its, None))).is_err() {
            return false;
        }
        if !self.list_idle(&slot) {
            // The pool shut down: the spare runs an empty job and leaves like the others.
            slot.stop();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::tests::eventually;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    /// A burst of jobs that all block, as guest threads do: past [`STREAK`] misses a
    /// grower lists spare threads, later jobs are handed to them, every job runs, and once
    /// the burst is over the grower stops and the unused spares leave.
    #[test]
    fn a_burst_of_blocking_jobs_is_served_by_spares_made_ahead() {
        let pool = Pool::with_idle_timeout(256 * 1024, Duration::from_millis(100));
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(parking_lot::Mutex::new(released));
        let ran = Arc::new(AtomicUsize::new(0));
        let submit = |n: usize| {
            for _ in 0..n {
                let (released, ran) = (released.clone(), ran.clone());
                pool.execute(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    let _ = released.lock().recv();
                })
                .unwrap();
            }
        };
        submit(STREAK as usize);
        eventually("no spare thread was listed", || !pool.idle.lock().is_empty());
        submit(56);
        assert!(pool.spares.made.load(Ordering::Relaxed) > 0, "no spare was made");
        eventually("not every job ran", || ran.load(Ordering::SeqCst) == 64);
        for _ in 0..64 {
            release.send(()).unwrap();
        }
        eventually("the grower did not stop", || !pool.spares.growing.load(Ordering::Acquire));
        // The 64 threads and the spares nobody used leave after the idle timeout.
        eventually("idle threads did not leave", || pool.idle.lock().is_empty());
        pool.shutdown();
    }

    /// A few jobs in a row start no grower: nothing is made ahead for a program with a
    /// handful of threads.
    #[test]
    fn a_few_jobs_make_no_spares() {
        let pool = Pool::with_idle_timeout(256 * 1024, Duration::from_millis(100));
        let (tx, rx) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(parking_lot::Mutex::new(released));
        for _ in 0..STREAK - 1 {
            let (tx, released) = (tx.clone(), released.clone());
            pool.execute(move || {
                tx.send(()).unwrap();
                let _ = released.lock().recv();
            })
            .unwrap();
        }
        for _ in 0..STREAK - 1 {
            rx.recv_timeout(Duration::from_secs(10)).expect("a job ran");
        }
        assert!(!pool.spares.growing.load(Ordering::Acquire), "a grower started");
        assert!(pool.idle.lock().is_empty(), "spares were made");
        for _ in 0..STREAK - 1 {
            release.send(()).unwrap();
        }
        pool.shutdown();
    }

    /// The pool shut down while a grower runs: the grower stops, and every spare it
    /// listed is told to exit (none stays listed, though the idle timeout is a minute).
    #[test]
    fn a_shutdown_during_a_burst_stops_the_grower_and_its_spares() {
        let pool = Pool::with_idle_timeout(256 * 1024, Duration::from_secs(60));
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(parking_lot::Mutex::new(released));
        for _ in 0..STREAK {
            let released = released.clone();
            pool.execute(move || {
                let _ = released.lock().recv();
            })
            .unwrap();
        }
        eventually("no spare thread was listed", || !pool.idle.lock().is_empty());
        pool.shutdown();
        eventually("the grower did not stop", || !pool.spares.growing.load(Ordering::Acquire));
        // Each leaving thread tells the next: the list empties without any idle timeout.
        eventually("a spare stayed listed after the shutdown", || pool.idle.lock().is_empty());
        drop(release);
    }
}
