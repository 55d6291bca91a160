//! Waiting for descriptors to become ready, or for the run to end (an eventfd polled
//! beside them).

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, PollFd, PollFlags};

use super::{Signal, Terminated};

/// `d` as the `poll(2)` timeout it is.
fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec { tv_sec: d.as_secs().min(i64::MAX as u64) as i64, tv_nsec: d.subsec_nanos().into() }
}

impl Signal {
    /// The eventfd that becomes readable when the run ends.
    fn wake_fd(&self) -> wasmtime::Result<BorrowedFd<'_>> {
        if self.wake_fd.get().is_none() {
            let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(Into::into)
                .and_then(crate::hostfd::above_stdio)
                .map_err(|e| wasmtime::format_err!("creating an eventfd: {e}"))?;
            let _ = self.wake_fd.set(fd);
        }
        Ok(self.wake_fd.get().expect("set above").as_fd())
    }

    /// The eventfd that becomes readable when the run ends, for host code that polls its
    /// own descriptors (host functions). Readable at once if the run already ended.
    pub(crate) fn end_fd(&self) -> wasmtime::Result<BorrowedFd<'_>> {
        let fd = self.wake_fd()?;
        // A wake-up that ran before the eventfd existed did not write it.
        if self.is_ending() {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
        Ok(fd)
    }

    /// Blocks until `fd` is readable (`PollFlags::IN`) or writable (`OUT`): true; until
    /// `timeout` passes: false; or until the run ends: `Err(Terminated)`.
    pub(crate) fn wait_fd(
        &self,
        fd: BorrowedFd<'_>,
        flags: PollFlags,
        timeout: Option<Duration>,
    ) -> wasmtime::Result<bool> {
        let wake = self.wake_fd()?;
        let timeout = timeout.map(timespec);
        loop {
            self.bail_if_ending()?;
            let mut fds = [PollFd::new(&fd, flags), PollFd::new(&wake, PollFlags::IN)];
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => wasmtime::bail!("polling a standard stream: {e}"),
            }
            if !fds[1].revents().is_empty() {
                return Err(wasmtime::Error::new(Terminated));
            }
            self.bail_if_ending()?;
            if !fds[0].revents().is_empty() {
                return Ok(true);
            }
            if timeout.is_some() {
                return Ok(false);
            }
        }
    }

    /// Blocks until at least one of `fds` is ready for what it asks (`revents` of each
    /// entry are set, as by `poll(2)`): returns how many are; until `deadline` passes
    /// (forever for `None`): 0; or until the run ends: `Err(Terminated)`. A deadline
    /// already past still polls once, without waiting.
    pub(crate) fn wait_fds<'f>(&'f self, fds: &mut [PollFd<'f>], deadline: Option<Instant>) -> wasmtime::Result<usize> {
        let wake = self.wake_fd()?;
        let mut all: Vec<PollFd<'f>> = Vec::with_capacity(fds.len() + 1);
        all.extend(fds.iter().cloned());
        all.push(PollFd::from_borrowed_fd(wake, PollFlags::IN));
        loop {
            self.bail_if_ending()?;
            // Recomputed on every round, so a signal (EINTR) does not restart the wait.
            let timeout = deadline.map(|t| timespec(t.saturating_duration_since(Instant::now())));
            let ready = match rustix::event::poll(&mut all, timeout.as_ref()) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => wasmtime::bail!("polling {} descriptors: {e}", fds.len()),
            };
            let (woken, polled) = all.split_last().expect("holds the wake fd");
            if !woken.revents().is_empty() {
                return Err(wasmtime::Error::new(Terminated));
            }
            self.bail_if_ending()?;
            if ready > 0 || deadline.is_some_and(|t| Instant::now() >= t) {
                for (out, got) in fds.iter_mut().zip(polled) {
                    *out = got.clone();
                }
                return Ok(ready);
            }
        }
    }
}
