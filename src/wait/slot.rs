//! A guest thread's wait slot: where it records what it is parked on.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use super::Slots;

/// Where one guest thread is parked: the `parking_lot_core` key it waits on, 0 when it
/// is not parked. Only its thread writes it; a wake-up reads it.
#[derive(Default)]
pub(crate) struct WaitSlot {
    key: AtomicUsize,
    /// The host function the thread is inside, as its index in the run's list plus one;
    /// 0 when none. For the report of a thread that does not stop.
    host_call: AtomicU32,
}

impl WaitSlot {
    /// Records that this thread is about to park at `key` (before the park, whose
    /// validation checks [`Signal::is_ending`](super::Signal::is_ending): a wake-up either
    /// sees the key or the thread sees the run ending).
    pub(super) fn parking_at(&self, key: usize) {
        self.key.store(key, Ordering::SeqCst);
    }

    /// The thread is no longer parked.
    pub(super) fn unparked(&self) {
        self.key.store(0, Ordering::SeqCst);
    }

    /// The key the thread is parked on, 0 if none.
    /// The thread entered host function number `index` of its run (`None`: it left it).
    pub(crate) fn in_host_call(&self, index: Option<u32>) {
        self.host_call.store(index.map_or(0, |i| i + 1), Ordering::Relaxed);
    }

    /// The host function the thread is inside, if any.
    pub(super) fn host_call(&self) -> Option<u32> {
        self.host_call.load(Ordering::Relaxed).checked_sub(1)
    }

    pub(super) fn key(&self) -> usize {
        self.key.load(Ordering::SeqCst)
    }

    /// A key of this thread's own to park on: the slot's address, which no other
    /// `parking_lot` user (a lock, another thread's slot, guest memory) parks on.
    pub(super) fn own_key(&self) -> usize {
        self as *const WaitSlot as usize
    }
}

/// A thread's [`WaitSlot`], listed in its run's signal while this lives (it is part of
/// the thread's store, so it goes when the thread ends).
pub(crate) struct Waiter {
    slot: Arc<WaitSlot>,
    tid: i32,
    slots: Arc<Slots>,
}

impl Waiter {
    pub(super) fn new(tid: i32, slots: &Arc<Slots>) -> Waiter {
        let slot = Arc::new(WaitSlot::default());
        slots.lock().insert(tid, slot.clone());
        Waiter { slot, tid, slots: slots.clone() }
    }

    pub(crate) fn slot(&self) -> &Arc<WaitSlot> {
        &self.slot
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.slots.lock().remove(&self.tid);
    }
}
