//! What one thread's store may take, as Wasmtime asks it ([`wasmtime::ResourceLimiter`]):
//! one instance, a few tables and memories, and — from budgets shared by every thread of
//! the run — table elements and the bytes of private (unshared) memories, so that a guest
//! cannot reach gigabytes of host memory by `table.grow`, `memory.grow`, many memories,
//! or spawning threads whose copies add up. (The shared memory belongs to no store; its
//! type, lowered to the run's memory limit, caps it.)

use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreData;

/// Most tables one instance may define (Wasmtime's own default is 10 000).
pub(crate) const MAX_TABLES: usize = 100;
/// Most memories one instance may define, the imported one included.
pub(crate) const MAX_MEMORIES: usize = 100;

/// Units (table elements, bytes) left for the whole run.
pub(crate) struct Budget(AtomicU64);

impl Budget {
    pub(crate) fn new(units: u64) -> Budget {
        Budget(AtomicU64::new(units))
    }

    /// Takes `n` elements if that many are left.
    fn take(&self, n: u64) -> bool {
        self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(n)).is_ok()
    }

    fn give_back(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

impl wasmtime::ResourceLimiter for StoreData {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let extra = desired.saturating_sub(current) as u64;
        if !self.group.memory_budget.take(extra) {
            return Ok(false);
        }
        self.memory_bytes += extra;
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let extra = desired.saturating_sub(current) as u64;
        if !self.group.table_budget.take(extra) {
            return Ok(false);
        }
        self.table_elements += extra;
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

impl Drop for StoreData {
    /// A thread's tables and private memories go with its store: what they held returns
    /// to the run's budgets.
    fn drop(&mut self) {
        self.group.table_budget.give_back(self.table_elements);
        self.group.memory_budget.give_back(self.memory_bytes);
    }
}
