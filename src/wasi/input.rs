//! The live stdin of a run.
//!
//! A descriptor stdin is read only after a wait through the run's signal saw it
//! readable, so that a reader waiting for input stops when its run ends. The host's fd 0,
//! or a descriptor the host handed over, shares its open file description with the host
//! (and with other runs given the same descriptor), so it must stay in whatever blocking
//! mode the host chose: we never set `O_NONBLOCK` on it. Instead:
//! - a pipe, FIFO or terminal is reopened through `/proc/self/fd` when the run starts,
//!   which gives the run its own description of the same file, non-blocking: a read that
//!   finds it drained by someone else returns `EAGAIN` and waits again;
//! - a socket is read with `MSG_DONTWAIT`, which needs no descriptor flag;
//! - regular files never block and are read directly;
//! - whatever else (a pipe or terminal that could not be reopened) keeps its blocking
//!   description; readers of one run are then serialised from the readiness check to the
//!   end of the read (the `lock`, taken in every case), so that two guest threads both
//!   told "readable" cannot both read while only one finds data and the other blocks in
//!   `read(2)` out of the signal's reach. A reader waiting for that lock stops when its
//!   run ends ([`EndLock`]). (A reader outside the run, such as the host itself, racing
//!   for the same tty can still win the bytes; that needs the host's cooperation.)

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use anyhow::{Context, Result};
use parking_lot::Mutex;
use rustix::event::PollFlags;
use wasmtime_wasi::p1::types;

use super::stat::FileKind;
use super::stdio::{reopen, Input};
use super::{errno, Call};
use crate::error::{ErrorKind, ResultKind};
use crate::wait::EndLock;

/// How a descriptor stdin is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A regular file or block device: reads never block.
    Direct,
    /// A socket: `recv` with `MSG_DONTWAIT` after the readiness check.
    Socket,
    /// Anything else (a pipe, FIFO, tty): wait for readiness, then read.
    Poll,
}

/// A descriptor stdin.
pub(crate) struct FdInput {
    /// The host's descriptor; `None` is the host's fd 0.
    file: Option<Arc<File>>,
    /// The run's own non-blocking description of the same pipe, when it could be opened.
    own: Option<File>,
    mode: Mode,
    /// Serialises the run's readers (see the module comment).
    lock: EndLock,
}

/// Live stdin of a run.
pub(crate) enum InputStream {
    /// A descriptor to poll and read.
    Fd(FdInput),
    Bytes {
        data: Arc<[u8]>,
        pos: Mutex<usize>,
    },
    Null,
    /// The host's fd 0, closed when the run started: every read fails with `badf`, as
    /// on a closed descriptor (see [`crate::hostfd`]).
    Closed,
}

impl InputStream {
    pub(super) fn open(spec: &Input) -> Result<InputStream> {
        let fd = |file: Option<Arc<File>>, may_reopen: bool| {
            let host = match &file {
                Some(f) => f.as_fd(),
                None => rustix::stdio::stdin(),
            };
            let (mode, own) = match FileKind::of_fd(host) {
                Some((kind, ..)) if !kind.may_block() => (Mode::Direct, None),
                Some((FileKind::Socket, ..)) => (Mode::Socket, None),
                Some((kind @ (FileKind::Fifo | FileKind::CharDevice), dev, ino)) if may_reopen => {
                    (Mode::Poll, reopen(host, kind, dev, ino, false))
                }
                _ => (Mode::Poll, None),
            };
            InputStream::Fd(FdInput { file, own, mode, lock: EndLock::new() })
        };
        Ok(match spec {
            Input::Inherit if !crate::hostfd::is_open(0) => InputStream::Closed,
            Input::Inherit => fd(None, true),
            Input::Null => InputStream::Null,
            Input::Bytes(b) => InputStream::Bytes { data: b.clone(), pos: Mutex::new(0) },
            // The run's own description, opened non-blocking so that opening a FIFO does
            // not wait for a writer (reads wait, through the signal) and reads never block.
            Input::Path(p) => fd(
                Some(Arc::new(
                    std::fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
                        .open(p)
                        .and_then(crate::hostfd::above_stdio)
                        .with_context(|| format!("opening {} as the guest's stdin", p.display()))
                        .kind(ErrorKind::Io)?,
                )),
                false,
            ),
            Input::File(f) => fd(Some(f.clone()), true),
        })
    }

    /// The descriptor to wait on, or `None` when reads never block (bytes, null, closed).
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            InputStream::Fd(FdInput { own: Some(f), .. }) => Some(f.as_fd()),
            InputStream::Fd(FdInput { file: None, .. }) => Some(rustix::stdio::stdin()),
            InputStream::Fd(FdInput { file: Some(f), .. }) => Some(f.as_fd()),
            InputStream::Bytes { .. } | InputStream::Null | InputStream::Closed => None,
        }
    }

    /// True when this is the host's closed fd 0: the descriptor's calls fail with `badf`.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, InputStream::Closed)
    }

    /// True when stdin is a terminal.
    pub(crate) fn is_terminal(&self) -> bool {
        use std::io::IsTerminal;
        self.fd().is_some_and(|fd| fd.is_terminal())
    }

    /// Reads into the spare capacity of the empty `buf` (nothing at end of input), each
    /// attempt after a wait saw the descriptor readable, so a reader blocked on an empty
    /// pipe still stops when its run ends (a trap then).
    pub(crate) fn read(&self, call: &Call<'_>, buf: &mut Vec<u8>) -> Result<(), types::Error> {
        let (mode, lock) = match self {
            InputStream::Null => return Ok(()),
            InputStream::Closed => return Err(types::Errno::Badf.into()),
            InputStream::Bytes { data, pos } => {
                let mut pos = pos.lock();
                let rest = data.get(*pos..).unwrap_or_default();
                let n = buf.capacity().min(rest.len());
                *pos += n;
                buf.extend_from_slice(&rest[..n]);
                return Ok(());
            }
            InputStream::Fd(FdInput { mode, lock, .. }) => (*mode, lock),
        };
        let Some(fd) = self.fd() else { return Ok(()) };
        if buf.capacity() == 0 {
            return Ok(());
        }
        if mode == Mode::Direct {
            errno::retry_intr(|| rustix::io::read(fd, rustix::buffer::spare_capacity(&mut *buf)))
                .map_err(errno::sys)?;
            return Ok(());
        }
        let _serial = lock.lock(call.signal, call.slot).map_err(errno::trap)?;
        loop {
            call.wait_ready(fd, PollFlags::IN, false)?;
            let got = if mode == Mode::Socket {
                rustix::net::recv(fd, rustix::buffer::spare_capacity(&mut *buf), rustix::net::RecvFlags::DONTWAIT)
                    .map(|(n, _)| n)
            } else {
                rustix::io::read(fd, rustix::buffer::spare_capacity(&mut *buf))
            };
            match got {
                Ok(_) => return Ok(()),
                // Nothing read: wait again. `EINTR` too is no plain retry here: on a
                // blocking description another reader may have taken the bytes, and a
                // second read could then block where the signal cannot reach it.
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(errno::sys(e)),
            }
        }
    }
}
