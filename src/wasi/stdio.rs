//! The guest's standard streams: reads of fd 0 and writes to fds 1 and 2 are served here,
//! outside the context lock, so that a thread blocked on stdin stalls nobody and wakes when
//! the run ends. Once the guest closes or renumbers one of these fds, that fd is left to
//! the WASI context like any other.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::event::{EventfdFlags, PollFd, PollFlags};
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::types::{Ciovec, Iovec};
use wasmtime_wasi::runtime::in_tokio;
use wiggle::{GuestMemory, GuestPtr};

use super::delegate;
use super::errno;
use super::memory::{with_ctx, with_memory};
use super::P1_MODULE;
use crate::run::{RunShared, StoreData, Terminated};
use crate::stdio::{Source, Streams};

/// The run's standard streams, and which of fds 0, 1, 2 still are those streams.
pub(crate) struct Stdio {
    pub(crate) streams: Streams,
    moved: [AtomicBool; 3],
}

impl Stdio {
    pub(crate) fn new(streams: Streams) -> Stdio {
        Stdio { streams, moved: Default::default() }
    }

    /// True while `fd` is the original stdin (0), stdout (1) or stderr (2).
    pub(crate) fn owns(&self, fd: i32) -> bool {
        usize::try_from(fd).ok().and_then(|i| self.moved.get(i)).is_some_and(|m| !m.load(Ordering::SeqCst))
    }

    fn release(&self, fd: i32) {
        if let Some(m) = usize::try_from(fd).ok().and_then(|i| self.moved.get(i)) {
            m.store(true, Ordering::SeqCst);
        }
    }
}

/// The bytes of a guest `ciovec` array, concatenated: one write per `fd_write`.
/// At most this many bytes are taken from one `fd_write` (a short write, which WASI
/// allows and guests retry), so that a guest cannot make the host copy gigabytes at once.
const MAX_WRITE: usize = 16 << 20;

/// The bytes of a guest `ciovec` array, concatenated, up to [`MAX_WRITE`]: one write per
/// `fd_write`. `None` when the array is longer than `IOV_MAX` entries.
fn gather(mem: &GuestMemory<'_>, iovs: i32, len: i32) -> Result<Option<Vec<u8>>, wiggle::GuestError> {
    if len as u32 > IOV_MAX {
        return Ok(None);
    }
    let iovs = GuestPtr::<[Ciovec]>::new((iovs as u32, len as u32));
    let mut out = Vec::new();
    for iov in iovs.iter() {
        let iov = mem.read(iov?)?;
        let take = iov.buf_len.min((MAX_WRITE - out.len()) as u32);
        out.extend_from_slice(&mem.to_vec(iov.buf.as_array(take))?);
        if out.len() == MAX_WRITE {
            break;
        }
    }
    Ok(Some(out))
}

/// Most iovec entries one call may pass, as POSIX's IOV_MAX on Linux.
const IOV_MAX: u32 = 1024;

/// Copies `data` into a guest `iovec` array, in order.
fn scatter(mem: &mut GuestMemory<'_>, iovs: i32, len: i32, mut data: &[u8]) -> Result<(), wiggle::GuestError> {
    let iovs = GuestPtr::<[Iovec]>::new((iovs as u32, len as u32));
    for iov in iovs.iter() {
        if data.is_empty() {
            break;
        }
        let iov = mem.read(iov?)?;
        let n = data.len().min(iov.buf_len as usize);
        mem.copy_from_slice(&data[..n], iov.buf.as_array(n as u32))?;
        data = &data[n..];
    }
    Ok(())
}

/// Total capacity of a guest `iovec` array (of at most `IOV_MAX` entries).
fn capacity(mem: &GuestMemory<'_>, iovs: i32, len: i32) -> Result<usize, wiggle::GuestError> {
    let iovs = GuestPtr::<[Iovec]>::new((iovs as u32, (len as u32).min(IOV_MAX)));
    let mut total = 0usize;
    for iov in iovs.iter() {
        total = total.saturating_add(mem.read(iov?)?.buf_len as usize);
    }
    Ok(total)
}

fn io_errno(e: &std::io::Error) -> i32 {
    if e.kind() == std::io::ErrorKind::BrokenPipe { errno::PIPE } else { errno::IO }
}

impl RunShared {
    /// The eventfd that becomes readable when the run ends.
    fn wake_fd(&self) -> wasmtime::Result<std::os::fd::BorrowedFd<'_>> {
        if self.wake_fd.get().is_none() {
            let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| wasmtime::format_err!("creating an eventfd: {e}"))?;
            let _ = self.wake_fd.set(fd);
        }
        Ok(self.wake_fd.get().expect("set above").as_fd())
    }

    /// Blocks until stdin is readable (true), `timeout` passes (false), or the run ends.
    pub(crate) fn wait_stdin(&self, timeout: Option<std::time::Duration>) -> wasmtime::Result<bool> {
        match &self.stdio.streams.stdin {
            Source::Fd(None) => self.wait_fd(rustix::stdio::stdin(), PollFlags::IN, timeout),
            Source::Fd(Some(f)) => self.wait_fd(f.as_fd(), PollFlags::IN, timeout),
            Source::Bytes { .. } | Source::Null => Ok(true),
        }
    }

    /// Blocks until `fd` is readable (`PollFlags::IN`) or writable (`OUT`): true; until
    /// `timeout` passes: false; or until the run ends: `Err(Terminated)`.
    fn wait_fd(&self, fd: BorrowedFd<'_>, flags: PollFlags, timeout: Option<std::time::Duration>) -> wasmtime::Result<bool> {
        let wake = self.wake_fd()?;
        let timeout = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        loop {
            if self.terminating() {
                return Err(wasmtime::Error::new(Terminated));
            }
            let mut fds = [PollFd::new(&fd, flags), PollFd::new(&wake, PollFlags::IN)];
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => wasmtime::bail!("polling a standard stream: {e}"),
            }
            if !fds[1].revents().is_empty() || self.terminating() {
                return Err(wasmtime::Error::new(Terminated));
            }
            if !fds[0].revents().is_empty() {
                return Ok(true);
            }
            if timeout.is_some() {
                return Ok(false);
            }
        }
    }

    /// Reads stdin into `buf`, waking up when the run ends. `Ok(Err(errno))` for I/O errors.
    fn read_stdin(&self, buf: &mut [u8]) -> wasmtime::Result<Result<usize, i32>> {
        let fd = match &self.stdio.streams.stdin {
            Source::Null => return Ok(Ok(0)),
            Source::Bytes { data, pos } => {
                let mut pos = pos.lock();
                let n = buf.len().min(data.len() - *pos);
                buf[..n].copy_from_slice(&data[*pos..*pos + n]);
                *pos += n;
                return Ok(Ok(n));
            }
            Source::Fd(None) => rustix::stdio::stdin(),
            Source::Fd(Some(f)) => f.as_fd(),
        };
        loop {
            self.wait_fd(fd, PollFlags::IN, None)?;
            match rustix::io::read(fd, &mut *buf) {
                Ok(n) => return Ok(Ok(n)),
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::BADF) => return Ok(Err(errno::BADF)),
                Err(_) => return Ok(Err(errno::IO)),
            }
        }
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<StoreData>) -> anyhow::Result<()> {
    linker.func_wrap(
        P1_MODULE,
        "fd_write",
        |mut caller: Caller<'_, StoreData>, fd: i32, iovs: i32, len: i32, nwritten: i32| -> wasmtime::Result<i32> {
            if !(fd == 1 || fd == 2) || !caller.data().run.stdio.owns(fd) {
                return with_ctx(&mut caller, |ctx, mem| in_tokio(delegate::fd_write(ctx, mem, fd, iovs, len, nwritten)));
            }
            with_memory(&mut caller, |mem, run, tid| {
                let bytes = match gather(mem, iovs, len) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => return Ok(errno::INVAL),
                    Err(_) => return Ok(errno::FAULT),
                };
                let ready = |fd: BorrowedFd<'_>| run.wait_fd(fd, PollFlags::OUT, None).map(drop);
                if let Err(e) = run.stdio.streams.sink(fd).write(tid, &bytes, &ready)? {
                    return Ok(io_errno(&e));
                }
                match mem.write(GuestPtr::<u32>::new(nwritten as u32), bytes.len() as u32) {
                    Ok(()) => Ok(0),
                    Err(_) => Ok(errno::FAULT),
                }
            })
        },
    )?;
    linker.func_wrap(
        P1_MODULE,
        "fd_read",
        |mut caller: Caller<'_, StoreData>, fd: i32, iovs: i32, len: i32, nread: i32| -> wasmtime::Result<i32> {
            if fd != 0 || !caller.data().run.stdio.owns(fd) {
                return with_ctx(&mut caller, |ctx, mem| in_tokio(delegate::fd_read(ctx, mem, fd, iovs, len, nread)));
            }
            // Size the read from the guest's buffers, block without touching guest memory
            // (other threads may grow it meanwhile), then copy in.
            let cap = with_memory(&mut caller, |mem, _, _| Ok(capacity(mem, iovs, len)))?;
            let Ok(cap) = cap else { return Ok(errno::FAULT) };
            let mut buf = vec![0u8; cap.min(64 * 1024)];
            let run = caller.data().run.clone();
            let n = match run.read_stdin(&mut buf)? {
                Ok(n) => n,
                Err(e) => return Ok(e),
            };
            with_memory(&mut caller, |mem, _, _| {
                let ok = scatter(mem, iovs, len, &buf[..n])
                    .and_then(|_| mem.write(GuestPtr::<u32>::new(nread as u32), n as u32));
                Ok(if ok.is_ok() { 0 } else { errno::FAULT })
            })
        },
    )?;
    linker.func_wrap(P1_MODULE, "fd_close", |mut caller: Caller<'_, StoreData>, fd: i32| -> wasmtime::Result<i32> {
        caller.data().run.stdio.release(fd);
        with_ctx(&mut caller, |ctx, mem| in_tokio(delegate::fd_close(ctx, mem, fd)))
    })?;
    linker.func_wrap(
        P1_MODULE,
        "fd_renumber",
        |mut caller: Caller<'_, StoreData>, from: i32, to: i32| -> wasmtime::Result<i32> {
            caller.data().run.stdio.release(from);
            caller.data().run.stdio.release(to);
            with_ctx(&mut caller, |ctx, mem| in_tokio(delegate::fd_renumber(ctx, mem, from, to)))
        },
    )?;
    Ok(())
}
