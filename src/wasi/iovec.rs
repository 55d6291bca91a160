//! Guest `iovec`/`ciovec` arrays: gathering what a guest writes into one host buffer, and
//! scattering what the host read back into the guest's buffers. Shared by `read.rs`,
//! `write.rs` (`fd_read`, `fd_write`, `fd_pread`, `fd_pwrite`) and `sock.rs`
//! (`sock_recv`, `sock_send`).
//!
//! Guest memory of a threaded module is shared, so the host cannot borrow it: transfers
//! of streams (stdio, pipes, sockets, devices) go through a host copy buffer (regular
//! files go straight to and from the guest's buffers, `direct.rs`). Those buffers are
//! bounded:
//! - an array longer than [`IOV_MAX`] (1024) entries is refused with `inval`, as
//!   POSIX `readv`/`writev` do;
//! - one call moves at most [`MAX_CALL`] (16 MiB); more is a short read or write, which
//!   WASI allows and every guest library retries;
//! - all calls of one run together hold at most [`RUN_BUDGET`] (64 MiB) of copy buffers
//!   beyond a floor of [`FLOOR`] (64 KiB) that each call always gets. A call that finds
//!   the budget spent takes less (at least the floor): a short read or write, never an
//!   unbounded allocation. So a run's copy buffers never exceed
//!   `RUN_BUDGET + threads × FLOOR` (at most 128 MiB with the default 1024 threads).
//!
//! The budget is the run's [`WasiState::copy_budget`](super::WasiState), made by
//! [`copy_budget`].

use std::sync::Arc;

use wasmtime_wasi::p1::types::{self, Errno};
use wiggle::{GuestMemory, GuestPtr};

use crate::limits::{Budget, Share};

/// Most entries in one `iovec` or `ciovec` array (Linux's `IOV_MAX`).
pub(super) const IOV_MAX: u32 = 1024;

/// Most bytes one call reads or writes.
pub(super) const MAX_CALL: usize = 16 << 20;

/// Most bytes of copy buffers all calls of a run hold at once, beyond each call's floor.
const RUN_BUDGET: usize = 64 << 20;

/// Bytes every call may take whatever the budget says (so a run always makes progress).
const FLOOR: usize = 64 << 10;

/// A run's copy budget: [`RUN_BUDGET`] bytes.
pub(super) fn copy_budget() -> Arc<Budget> {
    Budget::new(RUN_BUDGET as u64)
}

/// Room for one copy: `len` bytes, of which those beyond the floor are held from the
/// run's copy budget until the grant is dropped.
pub(super) struct Grant {
    _beyond_floor: Option<Share>,
    /// Bytes the call may move.
    pub(super) len: usize,
}

/// Reserves room for a copy of up to `want` bytes: the grant is `want` capped at
/// [`MAX_CALL`] and at the floor plus what the run's budget has left, but never below
/// the floor.
pub(super) fn reserve(budget: &Arc<Budget>, want: usize) -> Grant {
    let want = want.min(MAX_CALL);
    if want <= FLOOR {
        return Grant { _beyond_floor: None, len: want };
    }
    let share = budget.take_up_to((want - FLOOR) as u64);
    Grant { len: FLOOR + share.units() as usize, _beyond_floor: Some(share) }
}

/// A byte count as a WASI size (always fits: calls move at most 16 MiB, or one guest
/// buffer).
pub(super) fn size(n: usize) -> Result<types::Size, types::Error> {
    types::Size::try_from(n).map_err(|_| Errno::Overflow.into())
}

/// Fails with `inval` when an array has more than [`IOV_MAX`] entries.
fn check_len<T>(iovs: &GuestPtr<[T]>) -> Result<(), types::Error> {
    if iovs.len() > IOV_MAX {
        Err(Errno::Inval.into())
    } else {
        Ok(())
    }
}

/// Total bytes the buffers of an `iovec` array can take (saturating).
pub(super) fn capacity(mem: &GuestMemory<'_>, iovs: types::IovecArray) -> Result<usize, types::Error> {
    check_len(&iovs)?;
    let mut total = 0usize;
    for iov in iovs.iter() {
        total = total.saturating_add(mem.read(iov?)?.buf_len as usize);
    }
    Ok(total)
}

/// The first non-empty buffer of `bufs` (from [`buffers`]), if it is the only one: then a
/// read can go straight into it when memory is not shared.
pub(super) fn single(bufs: &[(u32, u32)]) -> Option<GuestPtr<[u8]>> {
    let mut full = bufs.iter().filter(|&&(_, len)| len > 0);
    match (full.next(), full.next()) {
        (Some(&(addr, len)), None) => Some(GuestPtr::<u8>::new(addr).as_array(len)),
        _ => None,
    }
}

/// Total bytes of `bufs` (saturating).
pub(super) fn sum(bufs: &[(u32, u32)]) -> usize {
    bufs.iter().fold(0usize, |t, &(_, len)| t.saturating_add(len as usize))
}

/// The (address, length) of every buffer of an `iovec` array, for I/O straight into
/// guest memory (`direct.rs`).
pub(super) fn buffers(mem: &GuestMemory<'_>, iovs: types::IovecArray) -> Result<Vec<(u32, u32)>, types::Error> {
    check_len(&iovs)?;
    iovs.iter().map(|iov| mem.read(iov?).map(|iov| (iov.buf.offset(), iov.buf_len)).map_err(Into::into)).collect()
}

/// The (address, length) of every buffer of a `ciovec` array, for I/O straight from
/// guest memory (`direct.rs`).
pub(super) fn const_buffers(mem: &GuestMemory<'_>, ciovs: types::CiovecArray) -> Result<Vec<(u32, u32)>, types::Error> {
    check_len(&ciovs)?;
    ciovs.iter().map(|iov| mem.read(iov?).map(|iov| (iov.buf.offset(), iov.buf_len)).map_err(Into::into)).collect()
}

/// Total bytes of a `ciovec` array (saturating).
pub(super) fn total(mem: &GuestMemory<'_>, ciovs: types::CiovecArray) -> Result<usize, types::Error> {
    check_len(&ciovs)?;
    let mut total = 0usize;
    for iov in ciovs.iter() {
        total = total.saturating_add(mem.read(iov?)?.buf_len as usize);
    }
    Ok(total)
}

/// The bytes of a `ciovec` array, concatenated, up to `limit` bytes (one write per call).
/// Fails with `inval` when the array has more than [`IOV_MAX`] entries, `fault` when an
/// entry lies outside memory.
pub(super) fn gather(mem: &GuestMemory<'_>, ciovs: types::CiovecArray, limit: usize) -> Result<Vec<u8>, types::Error> {
    check_len(&ciovs)?;
    let mut out: Vec<u8> = Vec::new();
    for iov in ciovs.iter() {
        let room = limit - out.len();
        if room == 0 {
            break;
        }
        let iov = mem.read(iov?)?;
        if iov.buf_len == 0 {
            continue;
        }
        let take = (iov.buf_len as usize).min(room) as u32;
        let part = iov.buf.as_array(take);
        if out.is_empty() {
            // The common case, one buffer: its copy is the whole buffer.
            out = mem.to_vec(part)?;
        } else {
            out.extend_from_slice(&mem.to_vec(part)?);
        }
    }
    Ok(out)
}

/// Copies `data` into the buffers of an `iovec` array, in order (as many as it fills).
pub(super) fn scatter(mem: &mut GuestMemory<'_>, iovs: types::IovecArray, mut data: &[u8]) -> Result<(), types::Error> {
    check_len(&iovs)?;
    for iov in iovs.iter() {
        if data.is_empty() {
            break;
        }
        let iov = mem.read(iov?)?;
        let n = data.len().min(iov.buf_len as usize);
        if n == 0 {
            continue;
        }
        mem.copy_from_slice(&data[..n], iov.buf.as_array(n as u32))?;
        data = &data[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_capped_per_call_and_per_run_and_returned() {
        let budget = copy_budget();
        assert_eq!(reserve(&budget, 10).len, 10);
        assert_eq!(reserve(&budget, usize::MAX).len, MAX_CALL);
        let held: Vec<_> = (0..4).map(|_| reserve(&budget, MAX_CALL)).collect();
        assert!(held.iter().all(|g| g.len == MAX_CALL));
        assert_eq!(budget.used(), 4 * (MAX_CALL - FLOOR) as u64);
        // The budget is spent (but for what the floors leave): a short grant, never none.
        let short = reserve(&budget, MAX_CALL);
        assert_eq!(short.len, FLOOR + (RUN_BUDGET - 4 * (MAX_CALL - FLOOR)));
        assert_eq!(reserve(&budget, MAX_CALL).len, FLOOR);
        drop(short);
        drop(held);
        assert_eq!(budget.used(), 0);
    }
}
