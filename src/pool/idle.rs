//! The idle list: the slots of threads waiting for a job. Each listed slot knows its
//! place in the list, so a thread that timed out takes itself off in constant time:
//! with a search, 10 000 threads timing out together (500 ms after a fan-out) scanned
//! the list 10 000 times under its lock.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Slot;

/// What a slot's place is when it is not listed.
pub(super) const UNLISTED: usize = usize::MAX;

/// The idle list. Its methods run under the pool's `idle` lock, which also orders every
/// change of a slot's place (`Slot::at`).
#[derive(Default)]
pub(super) struct Idle(Vec<Arc<Slot>>);

impl Idle {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn push(&mut self, slot: Arc<Slot>) {
        slot.at.store(self.0.len(), Ordering::Relaxed);
        self.0.push(slot);
    }

    /// The slot listed last, taken off the list.
    pub(super) fn pop(&mut self) -> Option<Arc<Slot>> {
        let slot = self.0.pop()?;
        slot.at.store(UNLISTED, Ordering::Relaxed);
        Some(slot)
    }

    /// Takes `slot` off the list; false if it was not listed.
    pub(super) fn remove(&mut self, slot: &Arc<Slot>) -> bool {
        let at = slot.at.load(Ordering::Relaxed);
        if at >= self.0.len() || !Arc::ptr_eq(&self.0[at], slot) {
            return false;
        }
        self.0.swap_remove(at);
        if let Some(moved) = self.0.get(at) {
            moved.at.store(at, Ordering::Relaxed);
        }
        slot.at.store(UNLISTED, Ordering::Relaxed);
        true
    }

    /// Every listed slot, taken off the list.
    pub(super) fn take_all(&mut self) -> Vec<Arc<Slot>> {
        for slot in &self.0 {
            slot.at.store(UNLISTED, Ordering::Relaxed);
        }
        std::mem::take(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_come_off_from_anywhere_and_keep_their_places_right() {
        let slots: Vec<Arc<Slot>> = (0..5).map(|_| Arc::new(Slot::default())).collect();
        let mut idle = Idle::default();
        for s in &slots {
            idle.push(s.clone());
        }
        assert!(idle.remove(&slots[1]));
        assert!(!idle.remove(&slots[1]), "removed twice");
        assert!(idle.remove(&slots[0]));
        // The last one moved into a freed place, and is still found there.
        assert!(idle.remove(&slots[4]));
        assert_eq!(idle.len(), 2);
        let popped = idle.pop().unwrap();
        assert!(!idle.remove(&popped), "a popped slot was still listed");
        let rest = idle.take_all();
        assert_eq!(rest.len(), 1);
        assert!(idle.is_empty());
        assert!(!idle.remove(&rest[0]));
        assert!(rest.iter().chain([&popped]).all(|s| s.at.load(Ordering::Relaxed) == UNLISTED));
    }
}
