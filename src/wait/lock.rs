//! A lock whose waiters stop waiting when their run ends: what serialises guest threads
//! on a shared resource (a descriptor's file position, an output stream, a reader of
//! stdin), so that a thread queued behind a slow holder is not out of teardown's reach.
//!
//! The lock is a byte with two bits, as `parking_lot`'s own mutex: `LOCKED`, and `PARKED`
//! (some thread may be parked on it). A waiter parks at the lock's address through its
//! wait slot ([`Signal::park`]), so its run's end unparks it like any other wait; once it
//! holds the lock it checks the end again, so no guest I/O starts under a lock taken
//! after the run ended. Threads of different runs may share one lock (a file given to
//! several runs); a wake-up of one run unparks the others too, which see their run going
//! on and park again.

use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot_core::{UnparkResult, DEFAULT_UNPARK_TOKEN};

use super::{Signal, Terminated, WaitSlot};

const LOCKED: u8 = 1;
const PARKED: u8 = 2;

/// A mutual-exclusion lock whose wait ends with the waiter's run. No data inside: it
/// guards a resource outside (a file position).
#[derive(Default)]
pub(crate) struct EndLock {
    state: AtomicU8,
}

/// Holds an [`EndLock`] until dropped.
pub(crate) struct EndGuard<'a> {
    lock: &'a EndLock,
}

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

impl EndLock {
    pub(crate) const fn new() -> EndLock {
        EndLock { state: AtomicU8::new(0) }
    }

    /// The `parking_lot_core` key of the lock's waiters: its address, which nothing else
    /// parks on.
    fn key(&self) -> usize {
        self as *const EndLock as usize
    }

    /// Takes the lock for the thread of `slot`, waiting as long as another holds it:
    /// `Err(Terminated)` when `signal`'s run has ended, before or while waiting or by
    /// the time the lock is taken (then it is let go at once).
    pub(crate) fn lock<'a>(&'a self, signal: &Signal, slot: &WaitSlot) -> wasmtime::Result<EndGuard<'a>> {
        signal.bail_if_ending()?;
        if self.state.compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_slow(signal, slot)?;
        }
        let guard = EndGuard { lock: self };
        if signal.is_ending() {
            // Ended while we took it: nothing may start under it now.
            return Err(wasmtime::Error::new(Terminated));
        }
        Ok(guard)
    }

    fn lock_slow(&self, signal: &Signal, slot: &WaitSlot) -> wasmtime::Result<()> {
        let mut spins = 0u32;
        loop {
            let state = self.state.load(Ordering::Relaxed);
            if state & LOCKED == 0 {
                if self.state.compare_exchange_weak(state, state | LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok()
                {
                    return Ok(());
                }
                continue;
            }
            // A holder that lets go soon (a short read) is worth a few rounds of waiting
            // without parking.
            if state & PARKED == 0 && spins < 10 {
                spins += 1;
                std::thread::yield_now();
                continue;
            }
            if state & PARKED == 0
                && self
                    .state
                    .compare_exchange_weak(state, state | PARKED, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            // SAFETY: the lock's own address (see `key`), which only this file parks on
            // and unparks; the check is an atomic load.
            unsafe { signal.park(slot, self.key(), || self.state.load(Ordering::Relaxed) == LOCKED | PARKED, None) };
            if signal.is_ending() {
                // The wake-up this thread may have had from an unlock is not used: pass
                // it on, or the threads still parked (of other runs) would wait forever.
                if self.state.load(Ordering::Acquire) == PARKED {
                    self.wake_one(false);
                }
                return Err(wasmtime::Error::new(Terminated));
            }
        }
    }

    fn unlock(&self) {
        if self.state.compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed).is_ok() {
            return;
        }
        self.wake_one(true);
    }

    /// Wakes one parked thread, keeping `PARKED` while others still are parked (the
    /// callback runs under the queue's lock, where parkers validate); `release` lets go of
    /// the lock at the same time (the holder's unlock), otherwise whoever holds it keeps it.
    fn wake_one(&self, release: bool) {
        let callback = |result: UnparkResult| {
            let rest = if result.have_more_threads { PARKED } else { 0 };
            if release {
                self.state.store(rest, Ordering::Release);
            } else if rest == 0 {
                self.state.fetch_and(!PARKED, Ordering::Relaxed);
            }
            DEFAULT_UNPARK_TOKEN
        };
        // SAFETY: the lock's own address (see `key`); the callback only stores the state.
        unsafe { parking_lot_core::unpark_one(self.key(), callback) };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::testing::end_and_collect;
    use super::*;

    #[test]
    fn the_lock_serialises_its_holders() {
        let s = Arc::new(Signal::new());
        let lock = Arc::new(EndLock::new());
        let inside = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|tid| {
                let (s, lock, inside) = (s.clone(), lock.clone(), inside.clone());
                std::thread::spawn(move || {
                    let waiter = s.waiter(tid);
                    for _ in 0..2000 {
                        let _g = lock.lock(&s, waiter.slot()).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "one holder at a time");
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(lock.state.load(Ordering::SeqCst), 0, "free, nobody parked");
    }

    /// A thread queued behind a holder that never lets go leaves with `Terminated` when
    /// its run ends; the holder's run goes on.
    #[test]
    fn ending_stops_a_thread_waiting_for_the_lock() {
        let holder_run = Signal::new();
        let holder = holder_run.waiter(1);
        let lock = Arc::new(EndLock::new());
        let held = lock.lock(&holder_run, holder.slot()).unwrap();
        let s = Arc::new(Signal::new());
        let (out_tx, out) = mpsc::channel();
        let queued = {
            let (s, lock) = (s.clone(), lock.clone());
            std::thread::spawn(move || {
                let waiter = s.waiter(2);
                let r = lock.lock(&s, waiter.slot()).map(drop).map_err(|e| e.is::<Terminated>());
                out_tx.send(r).unwrap();
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(end_and_collect(&s, &out), Err(true));
        queued.join().unwrap();
        drop(held);
        assert_eq!(lock.state.load(Ordering::SeqCst) & LOCKED, 0, "free again");
        drop(lock.lock(&holder_run, holder.slot()).expect("the other run still takes it"));
    }

    /// After the end, the lock is not taken even when it is free.
    #[test]
    fn an_ended_run_takes_no_lock() {
        let s = Signal::new();
        let waiter = s.waiter(1);
        let lock = EndLock::new();
        s.end();
        assert!(lock.lock(&s, waiter.slot()).is_err());
        assert_eq!(lock.state.load(Ordering::SeqCst), 0);
    }
}
