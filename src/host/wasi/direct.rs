//! Regular-file I/O straight between the file and shared guest memory: `preadv` and
//! `pwritev` (`readv`/`writev` at the cursor) on host `iovec`s that point into the
//! guest's buffers, with no copy buffer in between. Used by `fd.rs` for regular files
//! (which never block for long) when the run's memory is shared; a 64 KiB `fd_pread`
//! then costs one kernel copy instead of two, and two threads reading at once no longer
//! share the memory bandwidth of four.
//!
//! Every buffer is checked against the memory's current size first (the first one
//! outside it traps, as a bad pointer does everywhere, before anything moves; a later
//! one ends the array); a shared memory never shrinks or moves, and the caller holds it for
//! the call, so the ranges stay valid while the kernel uses them. The kernel may race
//! with other guest threads on the same bytes, as any wasm store to shared memory may:
//! the memory is `UnsafeCell`s and no Rust reference to it is made. One call moves at
//! most `MAX_CALL` (16 MiB) in at most `IOV_MAX` (1024) buffers, like the copying path.

use std::cell::UnsafeCell;
use std::os::fd::AsRawFd;

use wasmtime_wasi::p1::types;

use super::iovec::MAX_CALL;

/// Guest buffers (address, length) as host `iovec`s into `memory`, empty ones dropped,
/// cut to `MAX_CALL` bytes in total, and before the first buffer outside the memory
/// (which traps when no buffer comes before it).
fn host_iovecs(memory: &[UnsafeCell<u8>], bufs: &[(u32, u32)]) -> Result<Vec<libc::iovec>, types::Error> {
    let base = UnsafeCell::raw_get(memory.as_ptr());
    let mut room = MAX_CALL;
    let mut out = Vec::with_capacity(bufs.len());
    for &(addr, len) in bufs {
        if room == 0 {
            break;
        }
        let (addr, len) = (addr as usize, len as usize);
        if addr.checked_add(len).is_none_or(|end| end > memory.len()) {
            if !out.is_empty() {
                // After good buffers: a short transfer of those (Wasmtime moves only the
                // first non-empty buffer and never looks at the others).
                break;
            }
            // A bad pointer traps, as wiggle's own checks do (and Wasmtime).
            return Err(wiggle::GuestError::PtrOutOfBounds(wiggle::Region { start: addr as u32, len: len as u32 }).into());
        }
        let len = len.min(room);
        if len == 0 {
            continue;
        }
        room -= len;
        out.push(libc::iovec { iov_base: base.wrapping_add(addr).cast(), iov_len: len });
    }
    Ok(out)
}

/// Reads into the guest buffers `bufs` of `memory`, at the cursor (`None`, the caller
/// holds the position lock) or at an offset; retries `EINTR`.
pub(super) fn read(file: &impl AsRawFd, memory: &[UnsafeCell<u8>], bufs: &[(u32, u32)], at: Option<u64>) -> Result<usize, types::Error> {
    let iovs = host_iovecs(memory, bufs)?;
    if iovs.is_empty() {
        return Ok(0);
    }
    transfer(|| match at {
        // SAFETY: every iovec points into `memory` (checked by `host_iovecs`), which the
        // caller keeps alive and which never shrinks; the kernel writes through them,
        // which may race with wasm threads like their own stores do (see the opening).
        None => unsafe { libc::readv(file.as_raw_fd(), iovs.as_ptr(), iovs.len() as libc::c_int) },
        Some(off) => unsafe { libc::preadv(file.as_raw_fd(), iovs.as_ptr(), iovs.len() as libc::c_int, off as libc::off_t) },
    })
}

/// Writes the guest buffers `bufs` of `memory`, at the cursor (`None`, the caller holds
/// the position lock) or at an offset; retries `EINTR`.
pub(super) fn write(file: &impl AsRawFd, memory: &[UnsafeCell<u8>], bufs: &[(u32, u32)], at: Option<u64>) -> Result<usize, types::Error> {
    let iovs = host_iovecs(memory, bufs)?;
    if iovs.is_empty() {
        return Ok(0);
    }
    transfer(|| match at {
        // SAFETY: as in `read`; here the kernel only reads through the iovecs.
        None => unsafe { libc::writev(file.as_raw_fd(), iovs.as_ptr(), iovs.len() as libc::c_int) },
        Some(off) => unsafe { libc::pwritev(file.as_raw_fd(), iovs.as_ptr(), iovs.len() as libc::c_int, off as libc::off_t) },
    })
}

/// Runs a system call returning a byte count or -1, retrying `EINTR`.
fn transfer(mut call: impl FnMut() -> libc::ssize_t) -> Result<usize, types::Error> {
    loop {
        let n = call();
        if let Ok(n) = usize::try_from(n) {
            return Ok(n);
        }
        let e = rustix::io::Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(rustix::io::Errno::IO);
        if e != rustix::io::Errno::INTR {
            return Err(super::errno::sys(e));
        }
    }
}
