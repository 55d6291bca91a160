//! A run's descriptor table: what each guest fd is, shared by every thread of the run.
//!
//! The table is locked only to look a descriptor up (a read lock, then an `Arc` clone) or
//! to change a slot (a write lock); all I/O happens on the `Arc<OpenFd>` outside the
//! lock, so threads using different descriptors never wait for each other, and a
//! descriptor closed or renumbered while another thread uses it stays valid until that
//! use ends (as with POSIX `close` racing `read`).

use std::sync::Arc;

use parking_lot::RwLock;

use super::descriptor::Descriptor;
use crate::limits::{Budget, Share};

/// A descriptor of the table, with the share of the run's descriptor limit that its host
/// descriptor holds: what lookups hand out. Derefs to the [`Descriptor`].
pub(crate) struct OpenFd {
    desc: Descriptor,
    _held: Share,
}

impl std::ops::Deref for OpenFd {
    type Target = Descriptor;
    fn deref(&self) -> &Descriptor {
        &self.desc
    }
}

/// Why a table operation failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FdError {
    /// No such descriptor.
    BadFd,
    /// The run's descriptor limit is reached.
    TooMany,
}

/// The descriptor table of one run.
pub(crate) struct FdTable {
    slots: RwLock<Vec<Option<Arc<OpenFd>>>>,
    /// The host descriptors the run holds, one unit each, held by a [`Share`] while it
    /// lives: those in the table, those closed or renumbered away while another thread
    /// still uses them (a `poll_oneoff`, a read or an `fd_sync` in flight), which hold
    /// their host descriptor until that use ends, and directory cursors. One counter, so
    /// the limit check costs the same however many descriptors are open.
    held: Arc<Budget>,
}

impl FdTable {
    /// A table holding at most `max` descriptors (stdio and preopens included).
    pub(crate) fn new(max: u32) -> FdTable {
        FdTable { slots: RwLock::new(Vec::new()), held: Budget::new(u64::from(max)) }
    }

    /// The descriptor at `fd`.
    pub(crate) fn get(&self, fd: u32) -> Result<Arc<OpenFd>, FdError> {
        self.slots.read().get(fd as usize).and_then(Clone::clone).ok_or(FdError::BadFd)
    }

    /// Counts one more host descriptor whatever the limit: a directory cursor, which
    /// only a descriptor already counted can make, so there are at most twice the limit.
    pub(crate) fn hold(&self) -> Share {
        self.held.take_anyway(1)
    }

    /// Puts `d` in the lowest free slot and returns its number.
    pub(crate) fn insert(&self, d: Descriptor) -> Result<u32, FdError> {
        // Counted before the table is locked: the lock is held only to pick the slot.
        let held = self.held.try_take(1).ok_or(FdError::TooMany)?;
        let entry = Arc::new(OpenFd { desc: d, _held: held });
        let mut slots = self.slots.write();
        let fd = match slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                slots.push(None);
                slots.len() - 1
            }
        };
        slots[fd] = Some(entry);
        Ok(fd as u32)
    }

    /// Removes `fd`. The descriptor itself closes when its last user drops it.
    pub(crate) fn remove(&self, fd: u32) -> Result<Arc<OpenFd>, FdError> {
        let mut slots = self.slots.write();
        let d = slots.get_mut(fd as usize).and_then(Option::take).ok_or(FdError::BadFd)?;
        while slots.last().is_some_and(Option::is_none) {
            slots.pop();
        }
        Ok(d)
    }

    /// Moves `from` to `to` (closing what `to` was), as POSIX `dup2` + `close`. A failure
    /// (either fd not open) changes nothing.
    pub(crate) fn renumber(&self, from: u32, to: u32) -> Result<(), FdError> {
        let mut slots = self.slots.write();
        let open = |fd: u32| slots.get(fd as usize).is_some_and(Option::is_some);
        if !open(from) || !open(to) {
            return Err(FdError::BadFd);
        }
        if from != to {
            let d = slots[from as usize].take();
            let old = std::mem::replace(&mut slots[to as usize], d);
            // Closed (if nobody else holds it) after the table is unlocked.
            drop(slots);
            drop(old);
        }
        Ok(())
    }

    /// Closes every descriptor (the run is over and its threads are joined): the host
    /// descriptors a guest opened are released when the run ends, not when the host
    /// frees the run handle.
    pub(crate) fn close_all(&self) {
        let slots = std::mem::take(&mut *self.slots.write());
        drop(slots);
    }

    /// True when no descriptor can be added (`insert` would fail with `TooMany`): lets
    /// `path_open` fail before it creates or opens anything.
    pub(crate) fn is_full(&self) -> bool {
        self.held.is_full()
    }

    /// How many host descriptors the run holds now (see `held`).
    #[cfg(test)]
    fn held(&self) -> u64 {
        self.held.used()
    }
}

#[cfg(test)]
mod tests {
    use super::super::descriptor::DirDesc;
    use super::super::stdio::OutputName;
    use super::*;

    fn dir() -> Descriptor {
        Descriptor::Dir(DirDesc::new(std::fs::File::open(std::env::temp_dir()).unwrap(), None, false))
    }

    /// The count is what the limit sees: stdio, directories, cursors, and descriptors
    /// closed while still in use, each until its last user lets go.
    #[test]
    fn every_host_descriptor_counts_until_its_last_user_drops_it() {
        let t = FdTable::new(5);
        for d in [Descriptor::Stdin, Descriptor::Output(OutputName::Stdout), Descriptor::Output(OutputName::Stderr)] {
            t.insert(d).unwrap();
        }
        assert_eq!(t.insert(dir()), Ok(3));
        assert_eq!(t.held(), 4);
        let cursor = t.hold();
        assert!(t.is_full());
        assert_eq!(t.insert(dir()), Err(FdError::TooMany));
        assert_eq!(t.held(), 5, "a refused insert takes nothing");
        drop(cursor);
        assert_eq!(t.insert(dir()), Ok(4));
        // Closed while another thread still uses it: counted until that use ends.
        let in_use = t.get(3).unwrap();
        drop(t.remove(3).unwrap());
        assert_eq!(t.held(), 5);
        drop(in_use);
        assert_eq!(t.held(), 4);
        // Renumbering onto an open fd closes it; a failed renumber changes nothing.
        assert_eq!(t.renumber(9, 4), Err(FdError::BadFd));
        assert_eq!(t.held(), 4);
        t.renumber(4, 0).unwrap();
        assert_eq!(t.held(), 3);
        t.close_all();
        assert_eq!(t.held(), 0);
    }
}
