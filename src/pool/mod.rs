//! A pool of OS threads for guest threads, so that a guest spawning threads in a loop does
//! not pay for creating and destroying an OS thread (stack mapping, Wasmtime's per-thread
//! signal stack) each time.
//!
//! A finished job's thread waits for another job for `IDLE_TIMEOUT`, then exits. Callers
//! that must know when a job is done (the group's join) put that in the job itself.
//!
//! Besides guest threads, the pool runs *blocking jobs* ([`Pool::execute_blocking`]):
//! system calls that can block in the kernel for long (`fsync`), handed over so that the
//! guest thread waiting for them can be stopped. At most [`MAX_BLOCKING`] run at once
//! per pool (per engine), so that syncs stuck on dead storage, which outlive the runs
//! that started them, cannot pile up host threads without bound.
//!
//! In a forked child only the forking thread exists: the idle threads of the parent's
//! pool are gone, and so are its blocking jobs. The pool notices the new process id at
//! the next job (or its shutdown) and forgets both.
//!
//! - `os_thread.rs`: a pool thread is a bare pthread;
//! - `signal_stack.rs`: its alternate signal stack is the bottom of its own stack;
//! - `idle.rs`: the idle list, with each slot's place in it;
//! - `spares.rs`: threads made ahead of a burst of jobs;
//! - `futex_hash.rs`: the process's futex hash, grown once for many threads.
//!
//! Lock order: a slot's `job` lock may be held while taking `idle`, never the other way
//! round (a thread timing out holds its slot and looks itself up in `idle`).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use idle::{Idle, UNLISTED};
use signal_stack::{SignalStack, SIGNAL_STACK};
use spares::Spares;

mod futex_hash;
mod idle;
mod os_thread;
mod signal_stack;
mod spares;

/// How long an idle thread waits for a new job before it exits.
const IDLE_TIMEOUT: Duration = Duration::from_millis(500);

/// Most blocking jobs (see the module doc) running at once in one pool.
pub(crate) const MAX_BLOCKING: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

/// Threads of every pool alive in the process: what the futex hash is sized for. A forked
/// child starts again from 0 (`forget_threads_in_child`).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Counts a pool thread in the process's [`THREADS`] while it lives.
struct Counted;

impl Counted {
    /// Counts the calling thread, of a pool whose threads have `stack` bytes of stack;
    /// the thread that brings the count to `futex_hash::MIN_THREADS` has another thread
    /// grow the futex hash (it can wait for an RCU grace period; no job should).
    fn new(stack: usize) -> Counted {
        if futex_hash::due(THREADS.fetch_add(1, Ordering::Relaxed) + 1) {
            let _ = os_thread::spawn(stack, Box::new(futex_hash::grow));
        }
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        THREADS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A forked child has only the thread that forked: none of the parent's pool threads.
extern "C" fn forget_threads_in_child() {
    THREADS.store(0, Ordering::Relaxed);
}

/// Registers [`forget_threads_in_child`] with `pthread_atfork`, once per process.
fn count_threads_per_process() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers a child handler that only stores to an atomic (async-signal-
        // safe), with no prepare or parent handler; it stays valid for the process's
        // life, as the library's code does once loaded.
        unsafe { libc::pthread_atfork(None, None, Some(forget_threads_in_child)) };
    });
}

thread_local! {
    /// On a pool thread: an address near the top of its stack (a local of its work loop)
    /// and the stack's size. Zero elsewhere.
    static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// The address of a local of the caller: about its stack pointer.
#[inline(never)]
fn stack_pointer() -> usize {
    let here = 0u8;
    std::hint::black_box(&here) as *const u8 as usize
}

/// On a thread of a pool: about how many bytes of its stack are left below the caller
/// (what it used is measured from the start of its work loop, so this errs high by the
/// few KiB above that: thread-local storage and the thread's start). `None` elsewhere.
pub(crate) fn stack_left() -> Option<usize> {
    let (top, size) = STACK.get();
    (size > 0).then(|| size.saturating_sub(top.saturating_sub(stack_pointer())))
}

/// Where an idle thread waits for its next job. With the standard library's futex-based
/// lock and condvar, not parking_lot's: a thread parked in parking_lot is listed in its
/// process-wide table by the address of its thread-local data, and a forked child keeps
/// that table but not the thread, so a child's new thread whose stack (and thread-local
/// data) reuses the address corrupts the table: a notify is lost and a run hangs. Idle
/// threads are the library's only threads parked between runs, when hosts fork.
struct Slot {
    job: std::sync::Mutex<Option<Job>>,
    cond: std::sync::Condvar,
    /// Its place in the idle list, [`UNLISTED`] when not listed (`idle.rs`).
    at: AtomicUsize,
}

impl Default for Slot {
    fn default() -> Slot {
        Slot { job: Default::default(), cond: Default::default(), at: AtomicUsize::new(UNLISTED) }
    }
}

impl Slot {
    /// The job lock. Jobs run outside it, so a panic cannot poison it; a poisoned lock
    /// is used as it is.
    fn job(&self) -> std::sync::MutexGuard<'_, Option<Job>> {
        self.job.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands the slot's thread an empty job: it runs it, sees the pool shut down, and
    /// exits.
    fn stop(&self) {
        *self.job() = Some(Box::new(|| {}));
        self.cond.notify_one();
    }
}

pub(crate) struct Pool {
    stack_size: usize,
    idle_timeout: Duration,
    idle: Mutex<Idle>,
    shutdown: AtomicBool,
    /// Blocking jobs running now.
    blocking: AtomicUsize,
    /// The process whose threads `idle` and `blocking` count (see the module doc).
    pid: AtomicU32,
    /// Threads made ahead of a burst of jobs (`spares.rs`).
    spares: Spares,
}

impl Pool {
    pub(crate) fn new(stack_size: usize) -> Arc<Pool> {
        Pool::with_idle_timeout(stack_size, IDLE_TIMEOUT)
    }

    fn with_idle_timeout(stack_size: usize, idle_timeout: Duration) -> Arc<Pool> {
        count_threads_per_process();
        Arc::new(Pool {
            stack_size,
            idle_timeout,
            idle: Mutex::new(Idle::default()),
            shutdown: AtomicBool::new(false),
            blocking: AtomicUsize::new(0),
            pid: AtomicU32::new(std::process::id()),
            spares: Spares::new(),
        })
    }

    /// The stack size of the pool's threads.
    pub(crate) fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// In a forked child, forgets the parent's idle threads and blocking jobs, which do not
    /// exist here; `idle` is the locked idle list.
    fn forget_parent(&self, idle: &mut Idle) {
        let pid = std::process::id();
        if self.pid.load(Ordering::Acquire) != pid {
            idle.take_all();
            self.blocking.store(0, Ordering::Release);
            self.spares.forget_parent();
            self.pid.store(pid, Ordering::Release);
        }
    }

    /// Runs `job` on an idle thread of the pool, or on a new one.
    pub(crate) fn execute(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let job: Job = Box::new(move || {
            // Guest thread bodies catch their own panics; this only keeps the pool thread
            // alive if something else ever panics.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        });
        // A statement of its own: the `idle` lock must be released before the slot's.
        let idle = {
            let mut idle = self.idle.lock();
            self.forget_parent(&mut idle);
            idle.pop()
        };
        if let Some(slot) = idle {
            *slot.job() = Some(job);
            slot.cond.notify_one();
            self.spares.hit();
            return Ok(());
        }
        let pool = self.clone();
        os_thread::spawn(self.thread_stack(), Box::new(move || pool.work(Arc::new(Slot::default()), Some(job))))?;
        // After the job's own thread: at the OS's thread limit, the job gets the thread.
        self.note_miss();
        Ok(())
    }

    /// The stack size of a new thread: the pool's, and its signal stack below.
    fn thread_stack(&self) -> usize {
        self.stack_size + SIGNAL_STACK
    }

    /// Runs a blocking job like [`Pool::execute`], unless [`MAX_BLOCKING`] of them are
    /// running already (`ErrorKind::WouldBlock`; the job is dropped unrun either way on
    /// error).
    pub(crate) fn execute_blocking(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        self.forget_parent(&mut self.idle.lock());
        let taken =
            self.blocking.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_BLOCKING).then_some(n + 1));
        if taken.is_err() {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        /// Gives the job's place back when the job is done or dropped unrun.
        struct Place(Arc<Pool>);
        impl Drop for Place {
            fn drop(&mut self) {
                self.0.blocking.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let place = Place(self.clone());
        self.execute(move || {
            let _place = place;
            job();
        })
    }

    /// The life of one pool thread: run `first`, then jobs handed to `slot`, until idle
    /// for too long or shut down. A spare thread starts with no job, its slot already
    /// listed as idle by its maker.
    fn work(self: Arc<Self>, slot: Arc<Slot>, first: Option<Job>) {
        STACK.set((stack_pointer(), self.stack_size));
        let _signal_stack = SignalStack::at_stack_bottom();
        let _counted = Counted::new(self.thread_stack());
        let mut job = first;
        loop {
            if let Some(job) = job.take() {
                job();
                if !self.list_idle(&slot) {
                    self.stop_next_idle();
                    return;
                }
            }
            match self.next_job(&slot) {
                Some(next) => job = Some(next),
                None => return,
            }
        }
    }

    /// Lists `slot` as idle; false if the pool shut down. The flag is read under the list's
    /// lock, which a shutdown takes after setting it (to tell the first idle thread): a
    /// slot listed here is always seen by the shutdown's chain of leaving threads.
    fn list_idle(&self, slot: &Arc<Slot>) -> bool {
        let mut idle = self.idle.lock();
        if self.shutdown.load(Ordering::SeqCst) {
            return false;
        }
        idle.push(slot.clone());
        true
    }

    /// Waits for a job on `slot`, which is listed as idle; `None` once it waited
    /// [`IDLE_TIMEOUT`] and took itself off the list (the thread then exits).
    fn next_job(&self, slot: &Arc<Slot>) -> Option<Job> {
        let mut next = slot.job();
        loop {
            if let Some(j) = next.take() {
                return Some(j);
            }
            let (guard, waited) =
                slot.cond.wait_timeout(next, self.idle_timeout).unwrap_or_else(std::sync::PoisonError::into_inner);
            next = guard;
            if waited.timed_out() && next.is_none() {
                // Leave, unless a caller took this slot off the idle list and is about
                // to hand it a job: then wait for that job.
                if self.idle.lock().remove(slot) {
                    return None;
                }
            }
        }
    }

    /// Tells idle threads to exit, and busy ones to exit after their job. Without waiting
    /// for them, and without waking them all at once: this wakes one idle thread, and each
    /// thread that leaves wakes the next. Thousands of threads woken together fought the
    /// caller (a host freeing its engine before it exits) for the CPUs: 10 000 idle
    /// threads made `wt_engine_free` take 0.35-0.5 s.
    pub(crate) fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.stop_next_idle();
    }

    /// Tells one idle thread, if any, to exit (after the pool shut down). In a forked
    /// child the parent's idle threads are forgotten first: they are not there to tell.
    fn stop_next_idle(&self) {
        let next = {
            let mut idle = self.idle.lock();
            self.forget_parent(&mut idle);
            idle.pop()
        };
        if let Some(slot) = next {
            slot.stop();
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Waits up to 10 s for `done`, failing with `what`.
    pub(in crate::pool) fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < give_up, "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A shutdown ends every idle thread (one tells the next), long before their idle
    /// timeout.
    #[test]
    fn a_shutdown_ends_every_idle_thread_without_waiting_for_the_timeout() {
        const N: usize = 50;
        let pool = Pool::with_idle_timeout(256 * 1024, Duration::from_secs(60));
        let (tx, rx) = std::sync::mpsc::channel();
        // Each job waits for all to run: N jobs on N threads.
        let all = Arc::new(std::sync::Barrier::new(N));
        for _ in 0..N {
            let (tx, all) = (tx.clone(), all.clone());
            pool.execute(move || {
                all.wait();
                // SAFETY: gettid has no arguments and cannot fail.
                tx.send(unsafe { libc::gettid() }).unwrap();
            })
            .unwrap();
        }
        let tids: Vec<i32> = (0..N).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        eventually("the threads did not go idle", || pool.idle.lock().len() >= N);
        pool.shutdown();
        eventually("an idle thread outlived the shutdown", || {
            tids.iter().all(|t| !std::path::Path::new(&format!("/proc/self/task/{t}")).exists())
        });
    }

    /// Jobs handed out just as idle threads time out: with a 1 ms idle timeout, many
    /// hand-overs race with a thread leaving. Every job must run, and nothing may hang
    /// (this deadlocked when `execute` held `idle` while taking a slot's lock).
    #[test]
    fn hand_over_racing_with_idle_exit_runs_every_job() {
        // On a thread of its own, so a deadlock fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(hand_over_race()).unwrap());
        let ran = rx.recv_timeout(Duration::from_secs(120)).expect("the pool deadlocked");
        assert_eq!(ran, 8000);
    }

    fn hand_over_race() -> usize {
        let pool = Pool::with_idle_timeout(256 * 1024, Duration::from_millis(1));
        let ran = Arc::new(AtomicUsize::new(0));
        let submitters: Vec<_> = (0..4)
            .map(|s| {
                let (pool, ran) = (pool.clone(), ran.clone());
                std::thread::spawn(move || {
                    for i in 0..2000u64 {
                        let r = ran.clone();
                        let (tx, rx) = std::sync::mpsc::channel();
                        pool.execute(move || {
                            r.fetch_add(1, Ordering::SeqCst);
                            let _ = tx.send(());
                        })
                        .unwrap();
                        rx.recv().unwrap();
                        // Sometimes let the thread reach its idle timeout before the next job.
                        if (i + s) % 7 == 0 {
                            std::thread::sleep(Duration::from_micros(900 + (i % 5) * 100));
                        }
                    }
                })
            })
            .collect();
        for s in submitters {
            s.join().unwrap();
        }
        pool.shutdown();
        ran.load(Ordering::SeqCst)
    }

    /// At most `MAX_BLOCKING` blocking jobs run at once; a place is given back when a job
    /// ends, so later ones run again.
    #[test]
    fn blocking_jobs_are_capped_per_pool() {
        let pool = Pool::new(256 * 1024);
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let (done_tx, done) = std::sync::mpsc::channel();
        for _ in 0..MAX_BLOCKING {
            let (released, done_tx) = (released.clone(), done_tx.clone());
            pool.execute_blocking(move || {
                let _ = released.lock().recv();
                done_tx.send(()).unwrap();
            })
            .unwrap();
        }
        let refused = pool.execute_blocking(|| {}).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::WouldBlock);
        for _ in 0..MAX_BLOCKING {
            release.send(()).unwrap();
            done.recv_timeout(Duration::from_secs(10)).expect("a job ended");
        }
        // Places are given back just after each job's end: wait for the last one.
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while pool.blocking.load(Ordering::SeqCst) > 0 {
            assert!(std::time::Instant::now() < give_up, "places were not given back");
            std::thread::yield_now();
        }
        let (tx, rx) = std::sync::mpsc::channel();
        pool.execute_blocking(move || tx.send(()).unwrap()).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        pool.shutdown();
    }
}
