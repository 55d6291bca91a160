//! Parking a thread on a key until it is unparked, a deadline passes or the run ends:
//! the one park behind atomic waits, sleeps and blocking jobs.

use std::time::Instant;

pub(crate) use parking_lot_core::ParkResult;
use parking_lot_core::DEFAULT_PARK_TOKEN;

use super::{Signal, WaitSlot};

impl Signal {
    /// Parks the thread of `slot` at `key` while `valid()` holds and the run is not
    /// ending, until `deadline` (forever for `None`) or an unpark of `key`. The caller
    /// checks [`Signal::bail_if_ending`] afterwards.
    ///
    /// # Safety
    /// `key` is an address no `parking_lot` user other than this module and the run's
    /// atomic waits parks on (guest memory, a wait slot, a blocking job's hand-over, an
    /// [`EndLock`](super::EndLock)), and
    /// `valid` neither panics nor calls into `parking_lot`.
    pub(crate) unsafe fn park(
        &self,
        slot: &WaitSlot,
        key: usize,
        valid: impl FnOnce() -> bool,
        deadline: Option<Instant>,
    ) -> ParkResult {
        slot.parking_at(key);
        // The check of `ending` runs under the queue's lock, like a wake-up's unpark of
        // this key, so the thread either sees the run ending or is queued when it is woken.
        let validate = || !self.is_ending() && valid();
        // SAFETY: the caller's guarantee on `key` and `valid`; the other callbacks do
        // nothing.
        let result = unsafe { parking_lot_core::park(key, validate, || {}, |_, _| {}, DEFAULT_PARK_TOKEN, deadline) };
        slot.unparked();
        result
    }

    /// Sleeps until `deadline` (forever for `None`), or until the run ends:
    /// `Err(Terminated)`. May return early; callers re-check their own condition.
    /// `slot` is the calling thread's.
    pub(crate) fn sleep_until(&self, slot: &WaitSlot, deadline: Option<Instant>) -> wasmtime::Result<()> {
        // SAFETY: the slot's own address (see `WaitSlot::own_key`); `valid` is trivial.
        unsafe { self.park(slot, slot.own_key(), || true, deadline) };
        self.bail_if_ending()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Arc;

    use super::super::testing::end_and_collect;
    use super::super::{Signal, Terminated};

    #[test]
    fn ending_wakes_a_thread_sleeping_forever() {
        let s = Arc::new(Signal::new());
        let (out_tx, out) = mpsc::channel();
        let sleeper = {
            let s = s.clone();
            std::thread::spawn(move || {
                let waiter = s.waiter(3);
                // Early returns (none expected) just sleep again, as callers do.
                let r = loop {
                    match s.sleep_until(waiter.slot(), None) {
                        Ok(()) => continue,
                        Err(e) => break e.is::<Terminated>(),
                    }
                };
                out_tx.send(r).unwrap();
            })
        };
        assert!(end_and_collect(&s, &out), "the sleeper leaves with Terminated");
        sleeper.join().unwrap();
        assert!(s.slots.lock().is_empty(), "the sleeper's slot left the list with it");
    }
}
