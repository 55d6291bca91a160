//! Every cap of a run, and the one primitive that enforces them.
//!
//! - [`Limits`]: the caps a run is given ([`RunConfig::limits`](crate::RunConfig)), with
//!   every default, and the fixed per-instance caps;
//! - [`InstanceCost`]: what one thread's instance takes of the run's budgets when its
//!   store is made (its private memories, its host memory);
//! - [`Budget`] and [`Share`]: units (threads, descriptors, table elements, bytes of
//!   memory or of copy buffers) that callers take a share of and give back by dropping it;
//! - [`Budgets`]: the run-wide budgets made from the limits, and [`StoreLimiter`], what
//!   one thread's store may take of them, as Wasmtime asks it;
//! - [`WriteQuota`]: the bytes a run may write to files under its preopened directories
//!   and the files it may create there.
//!
//! A budget is lock-free (one atomic counter) and shared by `Arc`, so a share can outlive
//! the call that took it (a descriptor held by a directory listing, a store's memories).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Default for [`Limits::max_threads`].
pub const DEFAULT_MAX_THREADS: u32 = 1024;

/// Default for [`Limits::max_fds`].
pub const DEFAULT_MAX_FDS: u32 = 256;

/// Default for [`Limits::max_table_elements`]: 10 million (about 80 MB of host memory).
pub const DEFAULT_MAX_TABLE_ELEMENTS: u64 = 10_000_000;

/// Default for [`Limits::max_memories`]: one private memory per thread at the default
/// thread limit (each reserves 4 GiB + 32 MiB of address space, so about 4 TiB in all).
pub const DEFAULT_MAX_MEMORIES: u32 = 1024;

/// Default for [`Limits::max_instance_bytes`]: 256 MiB, 256 KiB per thread at the default
/// thread limit (an instance of a typical C program takes a few KiB; one with a million
/// globals about 32 MiB).
pub const DEFAULT_MAX_INSTANCE_BYTES: u64 = 256 << 20;

/// Most tables one instance may define (Wasmtime's own default is 10 000).
pub(crate) const TABLES_PER_INSTANCE: usize = 100;

/// Most memories one instance may define, the imported one included.
pub(crate) const MEMORIES_PER_INSTANCE: usize = 100;

/// Wasm page size: memories here are 32-bit with 64 KiB pages.
const WASM_PAGE: u64 = 65536;

/// The caps of one run. Each thread's instance may besides define at most 100 tables and
/// 100 memories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most spawned threads running at once (the main thread not counted). A thread counts
    /// until its `wasi_thread_start` returns or it is stopped. Past the limit,
    /// `thread-spawn` returns a negative value to the guest (after waiting up to 20 ms for
    /// a thread that is just finishing). Default [`DEFAULT_MAX_THREADS`]. What one thread
    /// costs the host (stack, RSS, mappings) is in the header, at
    /// `wt_run_config_set_max_threads`.
    pub max_threads: u32,
    /// Most descriptors open at once in the run, stdio and preopened directories
    /// included. Past it, `path_open` fails with `mfile`. Default [`DEFAULT_MAX_FDS`].
    pub max_fds: u32,
    /// The most linear memory the guest may have, in bytes: the shared memory's maximum
    /// is lowered to it, and all private memories of all threads together stay within it;
    /// growing past it fails (`memory.grow` returns -1). `None` (default) = only the
    /// module's own maximum.
    pub max_memory: Option<u64>,
    /// The most table elements (function references) all threads' tables may hold
    /// together; `table.grow` past it returns -1, and an instance whose tables do not fit
    /// fails to instantiate. Default [`DEFAULT_MAX_TABLE_ELEMENTS`].
    pub max_table_elements: u64,
    /// The most private (unshared) memories all threads' instances may define together,
    /// a memory of 0 pages included: each reserves 4 GiB + 32 MiB of the host's address
    /// space and two mappings whatever its size (the engine reserves every 32-bit memory
    /// whole: interruption points rely on it). A thread whose instance's memories do not
    /// fit is not started (its spawn fails; for the main thread the run fails to start).
    /// Default [`DEFAULT_MAX_MEMORIES`].
    pub max_memories: u32,
    /// The most host memory, in bytes, all threads' instances may take together for
    /// themselves: each instance's context (about 32 bytes per global, 32 per function
    /// that escapes into a table or an export, 32 per import, plus the definitions of its
    /// tables and memories), estimated from above from the module before it exists
    /// (their table elements and linear memory count against `max_table_elements` and
    /// `max_memory`). A thread whose instance does not fit is not started (its spawn
    /// fails; for the main thread the run fails to start). Default
    /// [`DEFAULT_MAX_INSTANCE_BYTES`].
    pub max_instance_bytes: u64,
    /// The most bytes the guest may write, in all, to regular files (and block devices)
    /// it opened under its preopened directories: past it `fd_write` and `fd_pwrite`
    /// write what is left (a short write), then fail with `dquot`. Bytes count when
    /// written, also over old ones; removing files gives nothing back. `None` (default)
    /// = no cap.
    pub max_write_bytes: Option<u64>,
    /// The most files, directories, symlinks and links the guest may create under its
    /// preopened directories; past it, creating one fails with `dquot` (opening an
    /// existing file with `oflags::creat` still works). `None` (default) = no cap.
    pub max_files_created: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_threads: DEFAULT_MAX_THREADS,
            max_fds: DEFAULT_MAX_FDS,
            max_memory: None,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_memories: DEFAULT_MAX_MEMORIES,
            max_instance_bytes: DEFAULT_MAX_INSTANCE_BYTES,
            max_write_bytes: None,
            max_files_created: None,
        }
    }
}

impl Limits {
    /// The maximum, in 64 KiB pages, of a shared memory the module declares with
    /// `declared` pages: lowered to [`Limits::max_memory`].
    pub(crate) fn memory_pages(&self, declared: u64) -> u64 {
        self.max_memory.map_or(declared, |bytes| declared.min(bytes / WASM_PAGE))
    }
}

/// The run-wide budgets made from a run's [`Limits`] (the descriptor budget is the
/// descriptor table's).
pub(crate) struct Budgets {
    /// Spawned threads running wasm; each holds a share of one.
    pub(crate) threads: Arc<Budget>,
    /// Table elements of all threads' tables.
    table_elements: Arc<Budget>,
    /// Bytes of all private (unshared) memories of the run. (The shared memory belongs to
    /// no store; its type, lowered by [`Limits::memory_pages`], caps it.)
    memory_bytes: Arc<Budget>,
    /// Private memories of all instances of the run.
    memories: Arc<Budget>,
    /// Host memory of all instances of the run ([`InstanceCost::host_bytes`]).
    instance_bytes: Arc<Budget>,
}

/// What one thread's instance takes of the run's budgets as soon as its store is made,
/// beside what its tables and memories take as they are created and grow: known from
/// the module before any instance exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct InstanceCost {
    /// Memories the instance defines (a 0-page one included), counted against
    /// [`Limits::max_memories`].
    pub(crate) memories: u64,
    /// An estimate, from above, of the host memory the instance itself takes: its
    /// context (globals, function references, imports, table and memory definitions),
    /// counted against [`Limits::max_instance_bytes`].
    pub(crate) host_bytes: u64,
}

impl Budgets {
    pub(crate) fn new(limits: &Limits) -> Budgets {
        Budgets {
            threads: Budget::new(u64::from(limits.max_threads)),
            table_elements: Budget::new(limits.max_table_elements),
            memory_bytes: Budget::new(limits.max_memory.unwrap_or(u64::MAX)),
            memories: Budget::new(u64::from(limits.max_memories)),
            instance_bytes: Budget::new(limits.max_instance_bytes),
        }
    }

    /// What a new store (one thread's) may take, having taken `cost` for its instance;
    /// `Err(why)` when the instance does not fit in what the run has left.
    pub(crate) fn store_limiter(&self, cost: InstanceCost) -> Result<StoreLimiter, String> {
        let memories = self.memories.try_take(cost.memories).ok_or_else(|| {
            format!(
                "its instance defines {} memories and the run's limit of {} private memories would be passed \
                 ({} in use; even a memory of 0 pages reserves 4 GiB of address space)",
                cost.memories,
                self.memories.limit(),
                self.memories.used()
            )
        })?;
        let instance = self.instance_bytes.try_take(cost.host_bytes).ok_or_else(|| {
            format!(
                "its instance takes about {} bytes of host memory (globals, function references, imports, \
                 definitions of tables and memories), more than is left of the run's instance memory limit \
                 ({} of {} bytes in use)",
                cost.host_bytes,
                self.instance_bytes.used(),
                self.instance_bytes.limit()
            )
        })?;
        Ok(StoreLimiter {
            table_elements: self.table_elements.empty(),
            memory_bytes: self.memory_bytes.empty(),
            _memories: memories,
            _instance: instance,
        })
    }
}

/// What one thread's store may take, as Wasmtime asks it ([`wasmtime::ResourceLimiter`]):
/// one instance, a few tables and memories, and — from budgets shared by every thread of
/// the run — table elements and the bytes of private memories, so that a guest cannot
/// reach gigabytes of host memory by `table.grow`, `memory.grow`, many memories, or
/// spawning threads whose copies add up. What the store took goes back to the run's
/// budgets with it.
pub(crate) struct StoreLimiter {
    table_elements: Share,
    memory_bytes: Share,
    /// The instance's private memories and host memory, held for the store's life.
    _memories: Share,
    _instance: Share,
}

impl wasmtime::ResourceLimiter for StoreLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.memory_bytes.grow(desired.saturating_sub(current) as u64))
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.table_elements.grow(desired.saturating_sub(current) as u64))
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        TABLES_PER_INSTANCE
    }

    fn memories(&self) -> usize {
        MEMORIES_PER_INSTANCE
    }
}

/// The bytes a run may write to files under its preopened directories and the files it
/// may create there ([`Limits::max_write_bytes`], [`Limits::max_files_created`]). Unlike
/// the other budgets, what is spent is never given back.
pub(crate) struct WriteQuota {
    bytes: Option<Arc<Budget>>,
    files: Option<Arc<Budget>>,
}

/// Units reserved from a [`WriteQuota`] for one write or one creation: given back when
/// dropped, but for what [`Reserved::spend`] keeps.
pub(crate) struct Reserved {
    /// Units the call may use: all it asked for when there is no cap.
    pub(crate) units: u64,
    share: Option<Share>,
}

impl Reserved {
    /// Keeps `used` of the reserved units spent for good; the rest goes back.
    pub(crate) fn spend(mut self, used: u64) {
        if let Some(share) = &mut self.share {
            share.forget(used);
        }
    }
}

impl WriteQuota {
    pub(crate) fn new(limits: &Limits) -> WriteQuota {
        WriteQuota { bytes: limits.max_write_bytes.map(Budget::new), files: limits.max_files_created.map(Budget::new) }
    }

    /// True when the run has a cap on files created (a creation must then know whether
    /// it created).
    pub(crate) fn counts_files(&self) -> bool {
        self.files.is_some()
    }

    /// Reserves up to `n` bytes for one write: what is left of the cap (0 = none).
    pub(crate) fn reserve_bytes(&self, n: u64) -> Reserved {
        reserve(&self.bytes, n)
    }

    /// Reserves one file for a creation; `units` is 0 when none is left.
    pub(crate) fn reserve_file(&self) -> Reserved {
        reserve(&self.files, 1)
    }
}

fn reserve(budget: &Option<Arc<Budget>>, n: u64) -> Reserved {
    match budget {
        None => Reserved { units: n, share: None },
        Some(b) => {
            let share = b.take_up_to(n);
            Reserved { units: share.units(), share: Some(share) }
        }
    }
}

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
    /// Keeps up to `n` of this share's units taken for good: they are no longer given
    /// back when it is dropped.
    fn forget(&mut self, n: u64) {
        self.units -= n.min(self.units);
    }

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
    fn a_write_quota_keeps_what_was_spent() {
        let limits = Limits { max_write_bytes: Some(10), max_files_created: Some(1), ..Limits::default() };
        let q = WriteQuota::new(&limits);
        let r = q.reserve_bytes(8);
        assert_eq!(r.units, 8);
        r.spend(6);
        let r = q.reserve_bytes(8);
        assert_eq!(r.units, 4, "6 of 10 are spent");
        drop(r);
        assert_eq!(q.reserve_bytes(100).units, 4, "a reservation not spent goes back");
        assert!(q.counts_files());
        q.reserve_file().spend(1);
        assert_eq!(q.reserve_file().units, 0);
        let free = WriteQuota::new(&Limits::default());
        assert_eq!(free.reserve_bytes(u64::MAX).units, u64::MAX);
        assert!(!free.counts_files());
    }

    #[test]
    fn an_instance_takes_its_memories_and_host_bytes() {
        let limits = Limits { max_instance_bytes: 1000, max_memories: 3, ..Limits::default() };
        let b = Budgets::new(&limits);
        let cost = InstanceCost { memories: 2, host_bytes: 600 };
        let first = b.store_limiter(cost).expect("the first instance fits");
        let why = b.store_limiter(cost).err().expect("2 + 2 memories > 3");
        assert!(why.contains("limit of 3 private memories"), "{why}");
        let why = b.store_limiter(InstanceCost { memories: 1, host_bytes: 600 }).err().expect("1200 > 1000 bytes");
        assert!(why.contains("600 bytes of host memory"), "{why}");
        assert!(why.contains("instance memory limit"), "{why}");
        assert_eq!(b.memories.used(), 2, "a refused instance takes nothing");
        drop(first);
        assert!(b.store_limiter(cost).is_ok());
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
