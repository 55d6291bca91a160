//! Regular-file I/O straight between the file and shared guest memory: `preadv` and
//! `pwritev` (`readv`/`writev` at the cursor) on host `iovec`s that point into the
//! guest's buffers, with no copy buffer in between. Used by `fd.rs` for regular files
//! (which never block for long) when the run's memory is shared; a 64 KiB `fd_pread`
//! then costs one kernel copy instead of two (39 ms for 20 000 instead of ~66).
//!
//! Every buffer is checked against the memory's current size first: a write with one
//! outside it traps before anything moves; a read with a non-empty one outside it takes
//! the copying path instead, which traps only on bytes it fills (both as Wasmtime 46). A
//! shared memory never shrinks or moves, and the caller holds it for the call, so the
//! checked ranges stay valid while the kernel uses them. The kernel may race
//! with other guest threads on the same bytes, as any wasm store to shared memory may:
//! the memory is `UnsafeCell`s and no Rust reference to it is made. One call moves at
//! most `MAX_CALL` (16 MiB) in at most `IOV_MAX` (1024) buffers, like the copying path.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;

use wasmtime_wasi::p1::types;

use super::iovec::MAX_CALL;

/// Host `iovec`s into a shared memory that outlives them: made only by
/// [`Iovecs::for_read`] and [`Iovecs::for_write`], which check every range.
pub(super) struct Iovecs<'m> {
    iovs: Vec<libc::iovec>,
    _memory: PhantomData<&'m [UnsafeCell<u8>]>,
}

impl<'m> Iovecs<'m> {
    /// For a read: guest buffers (address, length) as host `iovec`s into `memory`, empty
    /// ones ignored, cut to `MAX_CALL` bytes in total; `None` when a non-empty buffer
    /// (before the cut) lies outside the memory (the copying read then traps only on what
    /// it would fill, as Wasmtime 46 does).
    pub(super) fn for_read(memory: &'m [UnsafeCell<u8>], bufs: &[(u32, u32)]) -> Option<Iovecs<'m>> {
        let mut room = MAX_CALL;
        let mut iovs = Vec::with_capacity(bufs.len());
        for &(addr, len) in bufs {
            if room == 0 {
                break;
            }
            if len == 0 {
                continue;
            }
            iovs.push(Self::iovec(memory, addr, len, &mut room)?);
        }
        Some(Iovecs { iovs, _memory: PhantomData })
    }

    /// For a write: the same, but every buffer, empty or not, must lie in the memory, or
    /// the call traps before anything moves (as Wasmtime 46 does).
    pub(super) fn for_write(memory: &'m [UnsafeCell<u8>], bufs: &[(u32, u32)]) -> Result<Iovecs<'m>, types::Error> {
        let mut room = MAX_CALL;
        let mut iovs = Vec::with_capacity(bufs.len());
        for &(addr, len) in bufs {
            let Some(iov) = Self::iovec(memory, addr, len, &mut room) else {
                // A bad pointer traps, as wiggle's own checks do.
                return Err(wiggle::GuestError::PtrOutOfBounds(wiggle::Region { start: addr, len }).into());
            };
            if iov.iov_len > 0 {
                iovs.push(iov);
            }
        }
        Ok(Iovecs { iovs, _memory: PhantomData })
    }

    /// One buffer as an `iovec`, at most `room` bytes of it (taken from `room`); `None`
    /// when it lies outside the memory.
    fn iovec(memory: &[UnsafeCell<u8>], addr: u32, len: u32, room: &mut usize) -> Option<libc::iovec> {
        let (addr, len) = (addr as usize, len as usize);
        if addr.checked_add(len)? > memory.len() {
            return None;
        }
        let len = len.min(*room);
        *room -= len;
        let base = UnsafeCell::raw_get(memory.as_ptr());
        Some(libc::iovec { iov_base: base.wrapping_add(addr).cast(), iov_len: len })
    }

    /// Keeps only the first `max` bytes of the buffers.
    pub(super) fn cut(&mut self, max: usize) {
        let mut room = max;
        for iov in &mut self.iovs {
            iov.iov_len = iov.iov_len.min(room);
            room -= iov.iov_len;
        }
        self.iovs.retain(|iov| iov.iov_len > 0);
    }

    fn count(&self) -> libc::c_int {
        self.iovs.len() as libc::c_int
    }
}

/// Reads into the buffers, at the cursor (`None`, the caller holds the position lock) or
/// at an offset; retries `EINTR`.
pub(super) fn read(file: &impl AsRawFd, iovs: &Iovecs<'_>, at: Option<u64>) -> Result<usize, types::Error> {
    // The kernel writes through the iovecs, which may race with wasm threads as their
    // own stores do (see the opening of this file).
    vectored(file, iovs, at, libc::readv, libc::preadv)
}

/// Writes the buffers, at the cursor (`None`, the caller holds the position lock) or at
/// an offset; retries `EINTR`.
pub(super) fn write(file: &impl AsRawFd, iovs: &Iovecs<'_>, at: Option<u64>) -> Result<usize, types::Error> {
    vectored(file, iovs, at, libc::writev, libc::pwritev)
}

type AtCursor = unsafe extern "C" fn(libc::c_int, *const libc::iovec, libc::c_int) -> libc::ssize_t;
type AtOffset = unsafe extern "C" fn(libc::c_int, *const libc::iovec, libc::c_int, libc::off_t) -> libc::ssize_t;

/// `readv`/`preadv` or `writev`/`pwritev` on the buffers.
fn vectored(
    file: &impl AsRawFd,
    iovs: &Iovecs<'_>,
    at: Option<u64>,
    cursor: AtCursor,
    offset: AtOffset,
) -> Result<usize, types::Error> {
    if iovs.iovs.is_empty() {
        return Ok(0);
    }
    let (fd, ptr, n) = (file.as_raw_fd(), iovs.iovs.as_ptr(), iovs.count());
    transfer(|| match at {
        // SAFETY: `ptr` and `n` are `iovs`' own array, and every iovec in it points into
        // the shared memory `iovs` borrows (checked when it was made), which outlives the
        // call and never shrinks, so the kernel reads or writes only that memory.
        None => unsafe { cursor(fd, ptr, n) },
        // SAFETY: as above; the offset is the kernel's to check.
        Some(off) => unsafe { offset(fd, ptr, n, off as libc::off_t) },
    })
}

/// Runs a system call returning a byte count or -1, retrying `EINTR`.
fn transfer(mut call: impl FnMut() -> libc::ssize_t) -> Result<usize, types::Error> {
    let n = super::errno::retry_intr(|| {
        usize::try_from(call()).map_err(|_| {
            rustix::io::Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(rustix::io::Errno::IO)
        })
    });
    n.map_err(super::errno::sys)
}
