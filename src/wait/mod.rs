//! Interruptible waits: every place a guest thread can block waits through this module,
//! so that each has exactly one way to be woken when its run ends.
//!
//! A run has one [`Signal`]. Ending it ([`Signal::end`]) sets a flag that every wait
//! checks; [`Signal::wake_all`] then wakes every thread wherever it blocks: threads
//! parked on a `parking_lot_core` queue (a rewritten atomic wait, a WASI sleep, a
//! blocking job) are unparked at the key their [`WaitSlot`] records, and threads polling
//! descriptors are woken through an eventfd. A woken thread sees the flag and leaves with
//! [`Terminated`]. The caller (the group's teardown) repeats the wake-up until the threads
//! are gone, which closes the window between a thread checking the flag and starting to
//! block.
//!
//! Each guest thread owns one [`WaitSlot`] (listed in the signal while its [`Waiter`]
//! lives): waiting writes the key it parks on there and nothing shared, so waits of
//! different threads never touch a common lock; the list of slots changes only when a
//! thread starts or ends, and only a wake-up walks it.
//!
//! - `slot.rs`: [`WaitSlot`] and [`Waiter`];
//! - `park.rs`: parking on a key (atomic waits) and sleeping;
//! - `blocking.rs`: a blocking system call on a pool thread, waited for interruptibly;
//! - `fd.rs`: waiting for descriptors to become ready;
//! - `lock.rs`: [`EndLock`], a lock whose waiters stop waiting when their run ends.

mod blocking;
mod fd;
mod lock;
mod park;
mod slot;

pub(crate) use lock::{EndGuard, EndLock};
pub(crate) use park::ParkResult;
pub(crate) use slot::{WaitSlot, Waiter};

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use parking_lot_core::DEFAULT_UNPARK_TOKEN;

/// The error a thread leaves with when another thread, or the host, ended its run.
#[derive(Debug)]
pub(crate) struct Terminated;

impl std::fmt::Display for Terminated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("thread terminated because its run ended")
    }
}
impl std::error::Error for Terminated {}

/// The wait slots of a run's live threads, by tid.
type Slots = Mutex<HashMap<i32, Arc<WaitSlot>>>;

/// What the waits of one run watch: whether the run is ending, and how to wake them.
#[derive(Default)]
pub(crate) struct Signal {
    ending: AtomicBool,
    /// The wait slot of every live thread.
    slots: Arc<Slots>,
    /// Becomes readable when the run ends; created on the first descriptor wait.
    wake_fd: OnceLock<OwnedFd>,
}

impl Signal {
    pub(crate) fn new() -> Signal {
        Signal::default()
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

    /// Marks the run as ending; true for the first call. The caller wakes next.
    pub(crate) fn end(&self) -> bool {
        !self.ending.swap(true, Ordering::SeqCst)
    }

    /// Wakes every thread wherever it waits, so it can notice the run is ending.
    pub(crate) fn wake_all(&self) {
        let keys: Vec<usize> = self.slots.lock().values().map(|s| s.key()).filter(|&k| k != 0).collect();
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

    /// The host function thread `tid` is inside (its index in the run's list), if any.
    pub(crate) fn host_call_of(&self, tid: i32) -> Option<u32> {
        self.slots.lock().get(&tid).and_then(|s| s.host_call())
    }

    /// Lists the wait slot of thread `tid` (made with its store) until the returned
    /// [`Waiter`] is dropped.
    pub(crate) fn waiter(&self, tid: i32) -> Waiter {
        Waiter::new(tid, &self.slots)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::Signal;

    /// Ends the run and wakes until `done` yields what the waiting thread returned, as
    /// the supervisor does; panics (instead of hanging) after 10 s.
    pub(crate) fn end_and_collect<R>(s: &Signal, done: &mpsc::Receiver<R>) -> R {
        s.end();
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            s.wake_all();
            if let Ok(r) = done.recv_timeout(Duration::from_millis(1)) {
                return r;
            }
            assert!(Instant::now() < give_up, "the waiting thread was not stopped");
        }
    }
}
