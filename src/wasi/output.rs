//! The live stdout and stderr of a run.
//!
//! A descriptor stream is written without ever blocking in `write(2)`: a regular file
//! never blocks; a pipe or FIFO is reopened through `/proc/self/fd` when the run starts,
//! which gives the run its own non-blocking description of the same pipe (the host's
//! stays as the host set it), written `PIPE_BUF` at a time: each chunk goes in whole or
//! fails with `EAGAIN`, and the writer waits through the run's signal. Anything else (a
//! tty, a pipe that could not be reopened) is written `PIPE_BUF` at a time after such a
//! wait saw it writable, the run's writers serialised, which cannot block on a pipe that
//! only this run writes.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use parking_lot::Mutex;
use rustix::event::PollFlags;
use wasmtime_wasi::p1::types;

use super::stat::FileKind;
use super::stdio::{reopen_pipe, Output, OutputCallback, OutputName};
use super::{errno, Call};

/// Live stdout or stderr of a run.
pub(crate) enum OutputStream {
    /// The host's own stdout or stderr.
    Inherit(OutputName, Sink),
    Null,
    File(Arc<File>, Mutex<()>, Sink),
    Callback(OutputCallback, Mutex<()>),
    /// The host's stdout or stderr, closed when the run started: every write fails with
    /// `badf`, as on a closed descriptor (see [`crate::hostfd`]).
    Closed,
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
        match FileKind::of_fd(fd) {
            Some((FileKind::Fifo, dev, ino)) => Sink { regular: false, own: reopen_pipe(fd, dev, ino, true) },
            Some((kind, ..)) => Sink { regular: !kind.may_block(), own: None },
            None => Sink { regular: false, own: None },
        }
    }

    /// The descriptor to write: our own if we have one.
    fn fd<'a>(&'a self, host: BorrowedFd<'a>) -> BorrowedFd<'a> {
        self.own.as_ref().map_or(host, |f| f.as_fd())
    }
}

impl OutputStream {
    pub(super) fn new(spec: &Output, name: OutputName) -> OutputStream {
        match spec {
            Output::Inherit => {
                let (number, fd) = match name {
                    OutputName::Stdout => (1, rustix::stdio::stdout()),
                    OutputName::Stderr => (2, rustix::stdio::stderr()),
                };
                if !crate::hostfd::is_open(number) {
                    return OutputStream::Closed;
                }
                OutputStream::Inherit(name, Sink::of(fd))
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
            OutputStream::Inherit(OutputName::Stdout, _) => std::io::stdout().is_terminal(),
            OutputStream::Inherit(OutputName::Stderr, _) => std::io::stderr().is_terminal(),
            OutputStream::File(f, ..) => f.is_terminal(),
            OutputStream::Null | OutputStream::Callback(..) | OutputStream::Closed => false,
        }
    }

    /// True when this is the host's closed stdout or stderr: the descriptor's calls fail
    /// with `badf`.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, OutputStream::Closed)
    }

    /// Writes all of `bytes` in one piece: concurrent writers of the run never interleave
    /// within it; a callback gets them with the calling thread's id. A descriptor that
    /// could block is waited on through the run's signal, so a guest stuck on a full pipe
    /// still stops when its run ends (a trap then).
    pub(crate) fn write(&self, call: &Call<'_>, bytes: &[u8]) -> Result<(), types::Error> {
        match self {
            OutputStream::Inherit(OutputName::Stdout, sink) => {
                // Hold std's lock (and flush its buffer) so Rust code in the host that
                // prints to the same stream neither interleaves nor reorders with us.
                let mut out = std::io::stdout().lock();
                out.flush().map_err(errno::io)?;
                write_fd(call, sink.fd(rustix::stdio::stdout()), bytes, sink)
            }
            OutputStream::Inherit(OutputName::Stderr, sink) => {
                let _err = std::io::stderr().lock();
                write_fd(call, sink.fd(rustix::stdio::stderr()), bytes, sink)
            }
            OutputStream::Null => Ok(()),
            OutputStream::Closed => Err(types::Errno::Badf.into()),
            OutputStream::File(f, lock, sink) => {
                let _g = lock.lock();
                write_fd(call, sink.fd(f.as_fd()), bytes, sink)
            }
            OutputStream::Callback(cb, lock) => {
                let _g = lock.lock();
                cb(call.tid, bytes);
                Ok(())
            }
        }
    }
}

/// Writes all of `bytes` to `fd`: to a regular file directly; to a non-blocking
/// descriptor at once, waiting until it is writable after `EAGAIN`; to anything else at
/// most `PIPE_BUF` at a time, each when `fd` is writable (a blocking pipe with room for
/// one `PIPE_BUF` write takes it without blocking).
fn write_fd(call: &Call<'_>, fd: BorrowedFd<'_>, mut bytes: &[u8], sink: &Sink) -> Result<(), types::Error> {
    const PIPE_BUF: usize = 4096;
    // Waiting before each write is needed only where a write could block.
    let poll_first = !sink.regular && sink.own.is_none();
    while !bytes.is_empty() {
        let wrote = if poll_first {
            call.wait_ready(fd, PollFlags::OUT, false)?;
            rustix::io::write(fd, &bytes[..bytes.len().min(PIPE_BUF)])
        } else {
            errno::retry_intr(|| rustix::io::write(fd, bytes))
        };
        match wrote {
            Ok(0) => return Err(errno::io(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            // Nothing written on a descriptor that could block: wait again. `EINTR` too
            // is no plain retry here: another writer may have filled the pipe meanwhile,
            // and a second write could then block where the signal cannot reach it.
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) if poll_first => {}
            Err(rustix::io::Errno::AGAIN) => call.wait_ready(fd, PollFlags::OUT, false)?,
            Err(e) => return Err(errno::sys(e)),
        }
    }
    Ok(())
}
