//! Blocking system calls (`fsync` on slow storage) run on a pool thread while the guest
//! thread waits for them interruptibly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot_core::DEFAULT_UNPARK_TOKEN;

use super::{Signal, WaitSlot};
use crate::pool::Pool;

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
        let job = self.job.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(job) = job {
            // The job's captures (the descriptor it holds) are dropped when it returns,
            // before the waiter can see the result.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).ok();
            *self.result.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = r;
            self.finished.store(true, Ordering::SeqCst);
        }
    }

    fn key(&self) -> usize {
        self as *const Self as usize
    }
}

impl Signal {
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
            // SAFETY: the hand-over's address (see above), alive while `hand` is; the
            // check neither panics nor parks.
            unsafe { self.park(slot, hand.key(), || !hand.finished.load(Ordering::SeqCst), None) };
            self.bail_if_ending()?;
        }
        let result = hand.result.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        result.ok_or_else(|| wasmtime::format_err!("host panic in a blocking system call"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::super::testing::end_and_collect;
    use super::super::{Signal, Terminated};
    use super::*;

    fn signal() -> Arc<Signal> {
        Arc::new(Signal::new())
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
        let t = signal();
        let pool = Pool::new(256 << 10);
        let waiter = t.waiter(1);
        let got = t.run_blocking(waiter.slot(), &pool, || 6 * 7).unwrap();
        assert_eq!(got, 42);
        assert_eq!(waiter.slot().key(), 0, "unparked");
        pool.shutdown();
    }

    /// A job that panics does not leave its waiter parked: the call fails (a trap of
    /// that thread, not `Terminated`).
    #[test]
    fn a_panicking_blocking_job_fails_the_call_instead_of_hanging_it() {
        let t = signal();
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
    fn ending_stops_a_thread_waiting_for_a_slow_blocking_job() {
        let t = signal();
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
}
