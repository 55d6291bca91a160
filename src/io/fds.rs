//! A run's descriptor table: what each guest fd is, shared by every thread of the run.
//!
//! The table is locked only to look a descriptor up (a read lock, then an `Arc` clone) or
//! to change a slot (a write lock); all I/O happens on the `Arc<Descriptor>` outside the
//! lock, so threads using different descriptors never wait for each other, and a
//! descriptor closed or renumbered while another thread uses it stays valid until that
//! use ends (as with POSIX `close` racing `read`).

use std::sync::{Arc, Weak};
use std::sync::atomic::AtomicUsize;

use parking_lot::{Mutex, RwLock};

use super::dir::DirDesc;
use super::file::FileDesc;

/// Default for [`RunConfig::max_fds`](crate::RunConfig::max_fds).
pub const DEFAULT_MAX_FDS: u32 = 256;

/// What a guest descriptor refers to.
pub(crate) enum Descriptor {
    /// The run's stdin ([`Stdio::stdin`](super::Stdio)), wherever it was renumbered to.
    Stdin,
    /// The run's stdout (1) or stderr (2) stream, wherever it was renumbered to.
    Output(i32),
    /// Anything that is not a directory: a regular file, a FIFO, a character device, a
    /// socket, opened by `path_open` (or given by the host).
    File(FileDesc),
    /// A directory: a preopen or one opened by `path_open`.
    Dir(DirDesc),
}

/// How many host descriptors `d` holds.
fn host_fds(d: &Descriptor) -> usize {
    match d {
        // A cursor in use right now (locked) is counted as open.
        Descriptor::Dir(dir) => 1 + usize::from(dir.cursor.try_lock().is_none_or(|c| c.is_some())),
        Descriptor::File(_) => 1,
        // The run's stdio streams are the host's or the config's, not the guest's.
        Descriptor::Stdin | Descriptor::Output(_) => 1,
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
    slots: RwLock<Vec<Option<Arc<Descriptor>>>>,
    /// Descriptors that left the table but may still be in use (see `held`). Lock order:
    /// `slots`, then `retired`.
    retired: Mutex<Vec<Weak<Descriptor>>>,
    max: u32,
    /// Bytes of host copy buffers that WASI calls of this run hold right now (the
    /// run-wide budget of `host/wasi/iovec.rs`).
    pub(crate) copy_bytes: AtomicUsize,
}

impl FdTable {
    /// A table holding at most `max` descriptors (stdio and preopens included).
    pub(crate) fn new(max: u32) -> FdTable {
        FdTable { slots: RwLock::new(Vec::new()), retired: Mutex::new(Vec::new()), max, copy_bytes: AtomicUsize::new(0) }
    }

    /// The descriptor at `fd`.
    pub(crate) fn get(&self, fd: u32) -> Result<Arc<Descriptor>, FdError> {
        self.slots.read().get(fd as usize).and_then(|s| s.clone()).ok_or(FdError::BadFd)
    }

    /// How many descriptors the run holds: those in the table, and those closed or
    /// renumbered away while another thread still uses them (a `poll_oneoff` or a read in
    /// flight), which hold their host descriptor until that use ends.
    /// A directory being listed holds a second host descriptor (its cursor): it counts
    /// twice.
    fn held(&self, slots: &[Option<Arc<Descriptor>>]) -> usize {
        let mut retired = self.retired.lock();
        retired.retain(|w| w.strong_count() > 0);
        let open: usize = slots.iter().flatten().map(|d| host_fds(d)).sum();
        open + retired.iter().filter_map(Weak::upgrade).map(|d| host_fds(&d)).sum::<usize>()
    }

    /// Remembers a descriptor that left the table, while someone still holds it.
    fn retire(&self, d: &Arc<Descriptor>) {
        self.retired.lock().push(Arc::downgrade(d));
    }

    /// Puts `d` in the lowest free slot and returns its number.
    pub(crate) fn insert(&self, d: Descriptor) -> Result<u32, FdError> {
        let mut slots = self.slots.write();
        if self.held(&slots) >= self.max as usize {
            return Err(FdError::TooMany);
        }
        let fd = match slots.iter().position(|s| s.is_none()) {
            Some(free) => free,
            None => {
                slots.push(None);
                slots.len() - 1
            }
        };
        slots[fd] = Some(Arc::new(d));
        Ok(fd as u32)
    }

    /// Removes `fd`. The descriptor itself closes when its last user drops it.
    pub(crate) fn remove(&self, fd: u32) -> Result<Arc<Descriptor>, FdError> {
        let mut slots = self.slots.write();
        let d = slots.get_mut(fd as usize).and_then(Option::take).ok_or(FdError::BadFd)?;
        self.retire(&d);
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
            if let Some(old) = std::mem::replace(&mut slots[to as usize], d) {
                self.retire(&old);
            }
        }
        Ok(())
    }

    /// Closes every descriptor (the run is over and its threads are joined): the host
    /// descriptors a guest opened are released when the run ends, not when the host
    /// frees the run handle.
    pub(crate) fn close_all(&self) {
        let slots = std::mem::take(&mut *self.slots.write());
        self.retired.lock().clear();
        drop(slots);
    }

    /// True when no descriptor can be added (`insert` would fail with `TooMany`): lets
    /// `path_open` fail before it creates or opens anything.
    pub(crate) fn is_full(&self) -> bool {
        self.held(&self.slots.read()) >= self.max as usize
    }
}
