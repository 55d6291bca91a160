//! One WASI call of one guest thread: the context every preview 1 function gets, and the
//! ways a call reaches its run: the descriptor table, and waits that end when the run does.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use rustix::event::PollFlags;
use wasmtime_wasi::p1::types::{self, Errno};

use super::descriptor::FileDesc;
use super::errno;
use super::fds::OpenFd;
use super::WasiState;
use crate::pool::Pool;
use crate::wait::{EndGuard, Signal, WaitSlot};

/// What one call of one guest thread works with (the guest memory comes beside it).
pub(crate) struct Call<'a> {
    /// The run's WASI state.
    pub(crate) wasi: &'a WasiState,
    /// The run's end: every wait of the call wakes when the run ends.
    pub(crate) signal: &'a Signal,
    /// Where a system call that may block for long (`fsync`) runs while the caller waits.
    pub(crate) pool: &'a Arc<Pool>,
    /// The calling thread.
    pub(crate) tid: i32,
    /// The calling thread's wait slot: every wait of the call goes through it.
    pub(crate) slot: &'a WaitSlot,
}

impl Call<'_> {
    /// The descriptor at `fd` (a brief read lock of the table, then an `Arc` clone).
    pub(super) fn descriptor(&self, fd: types::Fd) -> Result<Arc<OpenFd>, types::Error> {
        self.wasi.fds.get(u32::from(fd)).map_err(errno::fd)
    }

    /// Waits until `fd` is ready for `flags` (readable, writable), or fails with `again`
    /// at once when the guest asked not to wait (`nonblock`). A run that ends meanwhile
    /// is a trap, which ends the calling thread.
    pub(super) fn wait_ready(&self, fd: BorrowedFd<'_>, flags: PollFlags, nonblock: bool) -> Result<(), types::Error> {
        if nonblock {
            return Err(Errno::Again.into());
        }
        self.signal.wait_fd(fd, flags, None).map_err(errno::trap)?;
        Ok(())
    }

    /// Takes `f`'s position lock for cursor I/O (a trap when the run ends before this
    /// thread has it).
    pub(super) fn position<'f>(&self, f: &'f FileDesc) -> Result<EndGuard<'f>, types::Error> {
        f.position.lock(self.signal, self.slot).map_err(errno::trap)
    }

    /// Runs `op` on a file that may block (its host descriptor is non-blocking) until it
    /// no longer fails with `EAGAIN`, waiting for `flags` in between (or `again` if the
    /// guest set `fdflags::nonblock`).
    pub(super) fn until_ready<T>(
        &self,
        f: &FileDesc,
        flags: PollFlags,
        mut op: impl FnMut() -> rustix::io::Result<T>,
    ) -> Result<T, types::Error> {
        loop {
            match errno::retry_intr(&mut op) {
                Ok(v) => return Ok(v),
                Err(rustix::io::Errno::AGAIN) => self.wait_ready(f.file.as_fd(), flags, f.is_nonblock())?,
                Err(e) => return Err(errno::sys(e)),
            }
        }
    }

    /// Runs `job`, which may block in the kernel for as long as the storage takes, on a
    /// pool thread while this thread waits for it or for the run to end (a trap then; the
    /// job finishes on its own). See [`Signal::run_blocking`].
    pub(super) fn run_blocking<T, F>(&self, job: F) -> Result<T, types::Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.signal.run_blocking(self.slot, self.pool, job).map_err(errno::trap)
    }
}
