//! What one thread's store may take, as Wasmtime asks it ([`wasmtime::ResourceLimiter`]):
//! one instance, a few tables and memories, unshared memories up to the run's memory
//! limit, and table elements from a budget shared by every thread of the run — so that
//! a guest cannot reach gigabytes of host memory by `table.grow` or by spawning threads
//! whose tables add up. (The shared memory belongs to no store; its type caps it.)

use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreData;

/// Most tables one instance may define (Wasmtime's own default is 10 000).
pub(crate) const MAX_TABLES: usize = 100;
/// Most memories one instance may define, the imported one included.
pub(crate) const MAX_MEMORIES: usize = 100;

/// Table elements left for the whole run.
pub(crate) struct TableBudget(AtomicU64);

impl TableBudget {
    pub(crate) fn new(elements: u64) -> TableBudget {
        TableBudget(AtomicU64::new(elements))
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
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.group.max_memory.is_none_or(|max| desired as u64 <= max))
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
    /// A thread's tables go with its store: their elements return to the run's budget.
    fn drop(&mut self) {
        self.group.table_budget.give_back(self.table_elements);
    }
}
