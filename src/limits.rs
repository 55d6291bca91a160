//! One primitive for every cap of a run: a [`Budget`] of units (threads, descriptors,
//! table elements, bytes of memory or of copy buffers) that callers take a [`Share`] of
//! and give back by dropping it.
//!
//! A budget is lock-free (one atomic counter) and shared by `Arc`, so a share can outlive
//! the call that took it (a descriptor held by a directory listing, a store's memories).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Units a run may hold at once: `limit`, of which `used` are taken.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    used: AtomicU64,
}

/// Units taken from a [`Budget`]; dropping the share gives them back.
#[derive(Debug)]
pub(crate) struct Share {
    budget: Arc<Budget>,
    units: u64,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget { limit, used: AtomicU64::new(0) })
    }

    /// The cap this budget was made with.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Units taken and not yet given back.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// True when not one more unit can be taken.
    pub(crate) fn is_full(&self) -> bool {
        self.used() >= self.limit
    }

    /// A share of no units, to grow later ([`Share::grow`]).
    pub(crate) fn empty(self: &Arc<Self>) -> Share {
        Share { budget: self.clone(), units: 0 }
    }

    /// Takes `n` units if that many are left, else nothing.
    pub(crate) fn try_take(self: &Arc<Self>, n: u64) -> Option<Share> {
        let mut share = self.empty();
        share.grow(n).then_some(share)
    }

    /// Takes up to `n` units: as many as are left (possibly none).
    pub(crate) fn take_up_to(self: &Arc<Self>, n: u64) -> Share {
        let limit = self.limit;
        let mut taken = 0;
        let _ = self.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            taken = n.min(limit.saturating_sub(used));
            (taken > 0).then(|| used + taken)
        });
        Share { budget: self.clone(), units: taken }
    }

    /// Takes `n` units even past the limit: for what already exists and must be counted
    /// (a descriptor the run was given), so that later takes see it.
    pub(crate) fn take_anyway(self: &Arc<Self>, n: u64) -> Share {
        self.used.fetch_add(n, Ordering::Relaxed);
        Share { budget: self.clone(), units: n }
    }
}

impl Share {
    /// The units this share holds.
    pub(crate) fn units(&self) -> u64 {
        self.units
    }

    /// Adds `n` more units to this share if that many are left in its budget.
    pub(crate) fn grow(&mut self, n: u64) -> bool {
        let limit = self.budget.limit;
        let ok = self
            .budget
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| used.checked_add(n).filter(|&u| u <= limit))
            .is_ok();
        if ok {
            self.units += n;
        }
        ok
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        if self.units > 0 {
            self.budget.used.fetch_sub(self.units, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_given_back_when_dropped() {
        let b = Budget::new(3);
        let two = b.try_take(2).expect("2 of 3 are left");
        assert_eq!(two.units(), 2);
        assert!(b.try_take(2).is_none(), "only 1 is left");
        let one = b.try_take(1).expect("1 is left");
        assert!(b.is_full());
        drop(two);
        assert_eq!(b.used(), 1);
        drop(one);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn take_up_to_takes_what_is_left() {
        let b = Budget::new(10);
        let seven = b.take_up_to(7);
        let rest = b.take_up_to(7);
        assert_eq!((seven.units(), rest.units()), (7, 3));
        assert_eq!(b.take_up_to(1).units(), 0);
        drop(rest);
        assert_eq!(b.used(), 7);
    }

    #[test]
    fn grow_never_passes_the_limit_and_take_anyway_may() {
        let b = Budget::new(5);
        let mut s = b.empty();
        assert!(s.grow(4));
        assert!(!s.grow(2), "4 + 2 > 5");
        assert!(!s.grow(u64::MAX), "no overflow");
        assert_eq!(s.units(), 4);
        let over = b.take_anyway(3);
        assert_eq!(b.used(), 7);
        assert!(b.is_full());
        drop((s, over));
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn concurrent_takes_never_exceed_the_limit() {
        let b = Budget::new(1000);
        let held: Vec<Vec<Share>> = std::thread::scope(|s| {
            let hs: Vec<_> =
                (0..4).map(|_| s.spawn(|| (0..1000).filter_map(|_| b.try_take(1)).collect::<Vec<_>>())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(held.iter().map(Vec::len).sum::<usize>(), 1000);
        drop(held);
        assert_eq!(b.used(), 0);
    }
}
