//! The live stdout and stderr of a run.
//!
//! A descriptor stream is written without ever blocking in `write(2)`, so that a writer
//! waiting for room stops when its run ends:
//! - a regular file or block device never blocks and is written directly;
//! - a pipe, FIFO or terminal is reopened through `/proc/self/fd` when the run starts,
//!   which gives the run its own non-blocking description of the same file (the host's
//!   stays as the host set it): a write takes what fits, and the writer waits for room
//!   through the run's signal;
//! - a socket is written with `send(MSG_DONTWAIT)`, which needs no descriptor flag;
//! - anything else (no `/proc`, a pseudo-terminal's master side, another device) is
//!   written `PIPE_BUF` at a time, each after a wait saw it writable: that cannot block
//!   on a pipe or terminal that only this run writes, and otherwise the teardown grace
//!   bounds it.
//!
//! The writers of one stream of one run are serialised, so one `fd_write` is one piece
//! among them; the lock is the run's own ([`EndLock`]: a writer queued for it stops when
//! the run ends), never one shared with other runs or with the host (Rust's
//! `std::io::stdout()` lock is not taken: a Rust host that prints partial lines through
//! it flushes them itself before a run's output should follow). Runs writing the same
//! pipe are separate writers, as processes are: writes of at most `PIPE_BUF` bytes never
//! interleave, larger ones may.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use rustix::event::PollFlags;
use wasmtime_wasi::p1::types;

use super::stat::FileKind;
use super::stdio::{reopen, Output, OutputCallback, OutputName};
use super::{errno, Call};
use crate::wait::EndLock;

/// Live stdout or stderr of a run.
pub(crate) enum OutputStream {
    /// The host's own stdout or stderr.
    Inherit(OutputName, Sink),
    Null,
    File(Arc<File>, Sink),
    /// Calls never overlap: the lock serialises the run's writers.
    Callback(OutputCallback, EndLock),
    /// The host's stdout or stderr, closed when the run started: every write fails with
    /// `badf`, as on a closed descriptor (see [`crate::hostfd`]).
    Closed,
}

/// How a descriptor stream is written, and the lock of the run's writers.
pub(crate) struct Sink {
    how: How,
    lock: EndLock,
}

enum How {
    /// A regular file or block device: writes never block, so they need neither
    /// readiness checks nor `PIPE_BUF` chunks.
    Regular,
    /// The run's own non-blocking description of the same pipe, FIFO or terminal.
    Own(File),
    /// A socket: `send` with `MSG_DONTWAIT`.
    Socket,
    /// Anything else: `PIPE_BUF` at a time, each after a wait saw it writable.
    Polled,
}

impl Sink {
    fn of(fd: BorrowedFd<'_>) -> Sink {
        let how = match FileKind::of_fd(fd) {
            Some((FileKind::Socket, ..)) => How::Socket,
            Some((kind, ..)) if !kind.may_block() => How::Regular,
            Some((kind, dev, ino)) => reopen(fd, kind, dev, ino, true).map_or(How::Polled, How::Own),
            None => How::Polled,
        };
        Sink { how, lock: EndLock::new() }
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
            Output::File(f) => OutputStream::File(f.clone(), Sink::of(f.as_fd())),
            Output::Callback(cb) => OutputStream::Callback(cb.clone(), EndLock::new()),
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
    /// within it; a callback gets them with the calling thread's id. Waits (for another
    /// writer of the run, for room on a descriptor) go through the run's signal, so a
    /// guest stuck on a full pipe still stops when its run ends (a trap then), and no
    /// write starts after that.
    pub(crate) fn write(&self, call: &Call<'_>, bytes: &[u8]) -> Result<(), types::Error> {
        match self {
            OutputStream::Inherit(OutputName::Stdout, sink) => write_fd(call, rustix::stdio::stdout(), bytes, sink),
            OutputStream::Inherit(OutputName::Stderr, sink) => write_fd(call, rustix::stdio::stderr(), bytes, sink),
            OutputStream::Null => Ok(()),
            OutputStream::Closed => Err(types::Errno::Badf.into()),
            OutputStream::File(f, sink) => write_fd(call, f.as_fd(), bytes, sink),
            OutputStream::Callback(cb, lock) => {
                let _g = lock.lock(call.signal, call.slot).map_err(errno::trap)?;
                cb(call.tid, bytes);
                Ok(())
            }
        }
    }
}

/// Writes all of `bytes` to the host's `host` (or the run's own description of it) as
/// `sink` says, holding the lock of the run's writers; between partial writes, a run that
/// ended stops the writer.
fn write_fd(call: &Call<'_>, host: BorrowedFd<'_>, mut bytes: &[u8], sink: &Sink) -> Result<(), types::Error> {
    const PIPE_BUF: usize = 4096;
    let fd = match &sink.how {
        How::Own(f) => f.as_fd(),
        _ => host,
    };
    let _serial = sink.lock.lock(call.signal, call.slot).map_err(errno::trap)?;
    while !bytes.is_empty() {
        let wrote = match sink.how {
            How::Regular | How::Own(_) => errno::retry_intr(|| rustix::io::write(fd, bytes)),
            How::Socket => {
                let flags = rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL;
                errno::retry_intr(|| rustix::net::send(fd, bytes, flags))
            }
            How::Polled => {
                call.wait_ready(fd, PollFlags::OUT, false)?;
                rustix::io::write(fd, &bytes[..bytes.len().min(PIPE_BUF)])
            }
        };
        match wrote {
            Ok(0) => return Err(errno::io(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            // Nothing written on a polled descriptor: wait again. `EINTR` too is no plain
            // retry here: another writer may have filled the pipe meanwhile, and a second
            // write could then block where the signal cannot reach it.
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) if matches!(sink.how, How::Polled) => {}
            Err(rustix::io::Errno::AGAIN) => call.wait_ready(fd, PollFlags::OUT, false)?,
            Err(e) => return Err(errno::sys(e)),
        }
        if !bytes.is_empty() {
            call.signal.bail_if_ending().map_err(errno::trap)?;
        }
    }
    Ok(())
}
