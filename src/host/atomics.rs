//! The host side of rewritten `memory.atomic.wait32/64` and `memory.atomic.notify` (see
//! `module/rewrite.rs`): the same semantics, on `parking_lot_core` queues keyed by the host
//! address of the word, with each waiter recording that address in its own
//! [`WaitSlot`](crate::wait::WaitSlot) (nothing shared by the run's threads), so that
//! teardown can wake it.
//!
//! Also the names of these imports ([`AtomicImport`], in the library's internal import
//! module): the contract between the rewrite, which adds the imports, and this file,
//! which defines them.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot_core::{FilterOp, DEFAULT_UNPARK_TOKEN};
use wasmtime::{Caller, Linker, SharedMemory, Trap};

use super::INTERNAL_MODULE;
use crate::group::StoreData;
use crate::wait::ParkResult;

/// Which atomic instruction an import replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AtomicOp {
    Wait32,
    Wait64,
    Notify,
}

/// One host function a rewritten module imports: one per distinct (instruction, memarg
/// offset), because the host must add the offset to the address operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AtomicImport {
    pub op: AtomicOp,
    /// The memarg offset added to the address operand.
    pub offset: u64,
}

impl AtomicImport {
    /// The import name, e.g. `wait32@16`.
    pub(crate) fn name(&self) -> String {
        let op = match self.op {
            AtomicOp::Wait32 => "wait32",
            AtomicOp::Wait64 => "wait64",
            AtomicOp::Notify => "notify",
        };
        format!("{op}@{}", self.offset)
    }

    /// The inverse of [`AtomicImport::name`], for modules loaded from a serialized cache.
    pub(crate) fn parse(name: &str) -> Option<AtomicImport> {
        let (op, offset) = name.split_once('@')?;
        let op = match op {
            "wait32" => AtomicOp::Wait32,
            "wait64" => AtomicOp::Wait64,
            "notify" => AtomicOp::Notify,
            _ => return None,
        };
        Some(AtomicImport { op, offset: offset.parse().ok()? })
    }
}

/// Defines the host function for one rewritten instruction.
pub(crate) fn define(linker: &mut Linker<StoreData>, imp: AtomicImport) -> anyhow::Result<()> {
    let (name, offset) = (imp.name(), imp.offset);
    match imp.op {
        AtomicOp::Wait32 => linker.func_wrap(
            INTERNAL_MODULE,
            &name,
            move |caller: Caller<'_, StoreData>, addr: i32, expected: i32, timeout: i64| {
                wait(caller.data(), addr, offset, 4, u64::from(expected as u32), timeout)
            },
        )?,
        AtomicOp::Wait64 => linker.func_wrap(
            INTERNAL_MODULE,
            &name,
            move |caller: Caller<'_, StoreData>, addr: i32, expected: i64, timeout: i64| {
                wait(caller.data(), addr, offset, 8, expected as u64, timeout)
            },
        )?,
        AtomicOp::Notify => {
            linker.func_wrap(INTERNAL_MODULE, &name, move |caller: Caller<'_, StoreData>, addr: i32, count: i32| {
                notify(caller.data(), addr, offset, count as u32)
            })?
        }
    };
    Ok(())
}

/// The host address of the `size`-byte word at `addr + offset`, checked as the wasm
/// instruction checks it: misaligned or out-of-bounds accesses trap.
fn locate(mem: &SharedMemory, addr: i32, offset: u64, size: u64) -> Result<usize, Trap> {
    let ea = u64::from(addr as u32).checked_add(offset).ok_or(Trap::MemoryOutOfBounds)?;
    if ea % size != 0 {
        return Err(Trap::HeapMisaligned);
    }
    let data = mem.data();
    if ea + size > data.len() as u64 {
        return Err(Trap::MemoryOutOfBounds);
    }
    Ok(data.as_ptr() as usize + ea as usize)
}

/// The run's shared memory; the rewrite only happens for modules that import one.
fn memory(data: &StoreData) -> Result<&SharedMemory, Trap> {
    data.group.memory.as_ref().ok_or(Trap::AtomicWaitNonSharedMemory)
}

fn wait(data: &StoreData, addr: i32, offset: u64, size: u64, expected: u64, timeout_ns: i64) -> wasmtime::Result<i32> {
    let signal = &data.group.teardown.signal;
    let key = locate(memory(data)?, addr, offset, size)?;
    // Negative timeouts mean "forever".
    let deadline = u64::try_from(timeout_ns).ok().and_then(|ns| Instant::now().checked_add(Duration::from_nanos(ns)));
    let current = || {
        // SAFETY: `key` is the address of an in-bounds, `size`-aligned word of the run's
        // shared memory (checked by `locate`), which the group keeps mapped, never moves, and
        // only accesses atomically where threads race (wasm atomics, or wasm data races
        // that the wasm memory model allows).
        unsafe {
            if size == 4 {
                u64::from((*(key as *const AtomicU32)).load(Ordering::SeqCst))
            } else {
                (*(key as *const AtomicU64)).load(Ordering::SeqCst)
            }
        }
    };
    // SAFETY: the key is an address inside guest memory, which no other parking_lot user
    // parks on; `current` neither panics nor calls into parking_lot.
    let result = unsafe { signal.park(data.waiter.slot(), key, || current() == expected, deadline) };
    signal.bail_if_ending()?;
    Ok(match result {
        ParkResult::Unparked(_) => 0, // "ok"
        ParkResult::Invalid => 1,     // "not-equal"
        ParkResult::TimedOut => 2,    // "timed-out"
    })
}

fn notify(data: &StoreData, addr: i32, offset: u64, count: u32) -> wasmtime::Result<i32> {
    let key = locate(memory(data)?, addr, offset, 4)?;
    let mut woken = 0u32;
    // SAFETY: as in `wait`; the callbacks do not panic or call into parking_lot.
    unsafe {
        parking_lot_core::unpark_filter(
            key,
            |_| {
                if woken < count {
                    woken += 1;
                    FilterOp::Unpark
                } else {
                    FilterOp::Stop
                }
            },
            |_| DEFAULT_UNPARK_TOKEN,
        );
    }
    Ok(woken as i32)
}
