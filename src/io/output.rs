//! The live stdout and stderr of a run.
//!
//! A descriptor stream is written without ever blocking in `write(2)`: a regular file
//! never blocks; a pipe or FIFO is reopened through `/proc/self/fd` when the run starts,
//! which gives the run its own non-blocking description of the same pipe (the host's
//! stays as the host set it), written `PIPE_BUF` at a time: each chunk goes in whole or
//! fails with `EAGAIN`, and the writer waits through `ready`. Anything else (a tty, a pipe
//! that could not be reopened) is written `PIPE_BUF` at a time after `ready` saw it
//! writable, the run's writers serialised, which cannot block on a pipe that only this
//! run writes.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Output, OutputCallback, Ready};

/// Live stdout or stderr of a run.
pub(crate) enum OutputStream {
    /// Host fd 1 or 2.
    Inherit(i32, Sink),
    Null,
    File(Arc<File>, Mutex<()>, Sink),
    Callback(OutputCallback, Mutex<()>),
}

/// How a descriptor stream is written.
pub(crate) struct Sink {
    /// A regular file or block device: writes never block, so they need neither
    /// readiness checks nor `PIPE_BUF` chunks.
    regular: bool,
    /// The run's own non-blocking description of the same pipe, when it could be opened.
    own: Option<File>,
}

impl Sink {
    fn of(fd: BorrowedFd<'_>) -> Sink {
        use rustix::fs::FileType;
        let st = rustix::fs::fstat(fd).ok();
        let kind = st.as_ref().map(|st| FileType::from_raw_mode(st.st_mode));
        let regular = matches!(kind, Some(FileType::RegularFile | FileType::BlockDevice));
        let own = match (kind, st) {
            (Some(FileType::Fifo), Some(st)) => reopen_pipe(fd, st.st_dev, st.st_ino),
            _ => None,
        };
        Sink { regular, own }
    }

    /// The descriptor to write: our own if we have one.
    fn fd<'a>(&'a self, host: BorrowedFd<'a>) -> BorrowedFd<'a> {
        self.own.as_ref().map_or(host, |f| f.as_fd())
    }
}

/// A new non-blocking write description of the pipe or FIFO at `fd`, when `/proc` offers
/// one and it is the same pipe (opening fails while the pipe has no reader).
fn reopen_pipe(fd: BorrowedFd<'_>, dev: u64, ino: u64) -> Option<File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .ok()?;
    let st = rustix::fs::fstat(&f).ok()?;
    let same = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo
        && st.st_dev == dev
        && st.st_ino == ino;
    same.then_some(f)
}

impl OutputStream {
    pub(super) fn new(spec: &Output, host_fd: i32) -> OutputStream {
        match spec {
            Output::Inherit => {
                let fd = if host_fd == 1 { rustix::stdio::stdout() } else { rustix::stdio::stderr() };
                OutputStream::Inherit(host_fd, Sink::of(fd))
            }
            Output::Null => OutputStream::Null,
            Output::File(f) => OutputStream::File(f.clone(), Mutex::new(()), Sink::of(f.as_fd())),
            Output::Callback(cb) => OutputStream::Callback(cb.clone(), Mutex::new(())),
        }
    }

    /// True when the stream is a terminal.
    pub(crate) fn is_terminal(&self) -> bool {
        use std::io::IsTerminal;
        match self {
            OutputStream::Inherit(1, _) => std::io::stdout().is_terminal(),
            OutputStream::Inherit(_, _) => std::io::stderr().is_terminal(),
            OutputStream::File(f, ..) => f.is_terminal(),
            OutputStream::Null | OutputStream::Callback(..) => false,
        }
    }

    /// Writes all of `bytes` in one piece: concurrent writers of the run never interleave
    /// within it. A descriptor that could block is waited on through `ready`, so a guest
    /// stuck on a full pipe still stops when its run ends (`ready` fails then). The inner
    /// result is the I/O error to report to the guest.
    pub(crate) fn write(&self, tid: i32, bytes: &[u8], ready: Ready<'_>) -> wasmtime::Result<std::io::Result<()>> {
        match self {
            OutputStream::Inherit(fd, sink) => {
                // Hold std's lock (and flush its buffer) so Rust code in the host that
                // prints to the same stream neither interleaves nor reorders with us.
                if *fd == 1 {
                    let mut out = std::io::stdout().lock();
                    if let Err(e) = out.flush() {
                        return Ok(Err(e));
                    }
                    write_fd(sink.fd(rustix::stdio::stdout()), bytes, sink, ready)
                } else {
                    let _err = std::io::stderr().lock();
                    write_fd(sink.fd(rustix::stdio::stderr()), bytes, sink, ready)
                }
            }
            OutputStream::Null => Ok(Ok(())),
            OutputStream::File(f, lock, sink) => {
                let _g = lock.lock();
                write_fd(sink.fd(f.as_fd()), bytes, sink, ready)
            }
            OutputStream::Callback(cb, lock) => {
                let _g = lock.lock();
                cb(tid, bytes);
                Ok(Ok(()))
            }
        }
    }
}

/// Writes all of `bytes` to `fd`: to a regular file directly; to a non-blocking
/// descriptor at once, waiting for `ready` after `EAGAIN`; to anything else at most
/// `PIPE_BUF` at a time, each when `fd` is writable (a blocking pipe with room for one
/// `PIPE_BUF` write takes it without blocking).
fn write_fd(
    fd: BorrowedFd<'_>,
    mut bytes: &[u8],
    sink: &Sink,
    ready: Ready<'_>,
) -> wasmtime::Result<std::io::Result<()>> {
    const PIPE_BUF: usize = 4096;
    // Waiting before each write is needed only where a write could block.
    let poll_first = !sink.regular && sink.own.is_none();
    let chunk = if poll_first { PIPE_BUF } else { usize::MAX };
    while !bytes.is_empty() {
        if poll_first {
            ready(fd)?;
        }
        match rustix::io::write(fd, &bytes[..bytes.len().min(chunk)]) {
            Ok(0) => return Ok(Err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) if !poll_first => ready(fd)?,
            Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => return Ok(Err(e.into())),
        }
    }
    Ok(Ok(()))
}
