//! The live stdout and stderr of a run.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Output, OutputCallback, Ready};

/// Live stdout or stderr of a run.
pub(crate) enum OutputStream {
    /// Host fd 1 or 2; true when it is a regular file.
    Inherit(i32, bool),
    Null,
    /// True when it is a regular file.
    File(Arc<File>, Mutex<()>, bool),
    Callback(OutputCallback, Mutex<()>),
}

/// True when `fd` is a regular file or block device: writes never block, so they need
/// neither readiness checks nor `PIPE_BUF` chunks.
fn is_regular(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|st| {
        matches!(rustix::fs::FileType::from_raw_mode(st.st_mode), rustix::fs::FileType::RegularFile | rustix::fs::FileType::BlockDevice)
    })
}

impl OutputStream {
    pub(super) fn new(spec: &Output, host_fd: i32) -> OutputStream {
        match spec {
            Output::Inherit => {
                let fd = if host_fd == 1 { rustix::stdio::stdout() } else { rustix::stdio::stderr() };
                OutputStream::Inherit(host_fd, is_regular(fd))
            }
            Output::Null => OutputStream::Null,
            Output::File(f) => OutputStream::File(f.clone(), Mutex::new(()), is_regular(f.as_fd())),
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

    /// Writes all of `bytes` in one piece: concurrent writers never interleave within it.
    /// Descriptors are written in `PIPE_BUF` chunks, each after `ready` saw the descriptor
    /// writable, so a guest stuck on a full pipe still stops when its run ends (`ready`
    /// fails then). The inner result is the I/O error to report to the guest.
    pub(crate) fn write(&self, tid: i32, bytes: &[u8], ready: Ready<'_>) -> wasmtime::Result<std::io::Result<()>> {
        match self {
            OutputStream::Inherit(fd, regular) => {
                // Hold std's lock (and flush its buffer) so Rust code in the host that
                // prints to the same stream neither interleaves nor reorders with us.
                if *fd == 1 {
                    let mut out = std::io::stdout().lock();
                    if let Err(e) = out.flush() {
                        return Ok(Err(e));
                    }
                    write_fd(rustix::stdio::stdout(), bytes, *regular, ready)
                } else {
                    let _err = std::io::stderr().lock();
                    write_fd(rustix::stdio::stderr(), bytes, *regular, ready)
                }
            }
            OutputStream::Null => Ok(Ok(())),
            OutputStream::File(f, lock, regular) => {
                let _g = lock.lock();
                write_fd(f.as_fd(), bytes, *regular, ready)
            }
            OutputStream::Callback(cb, lock) => {
                let _g = lock.lock();
                cb(tid, bytes);
                Ok(Ok(()))
            }
        }
    }
}

/// Writes all of `bytes` to `fd`: to a regular file directly; to anything else at most
/// `PIPE_BUF` at a time, each when `fd` is writable (a blocking pipe with room for one
/// `PIPE_BUF` write takes it without blocking).
fn write_fd(fd: BorrowedFd<'_>, mut bytes: &[u8], regular: bool, ready: Ready<'_>) -> wasmtime::Result<std::io::Result<()>> {
    const PIPE_BUF: usize = 4096;
    let chunk = if regular { usize::MAX } else { PIPE_BUF };
    while !bytes.is_empty() {
        if !regular {
            ready(fd)?;
        }
        match rustix::io::write(fd, &bytes[..bytes.len().min(chunk)]) {
            Ok(0) => return Ok(Err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) if regular => ready(fd)?,
            Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => return Ok(Err(e.into())),
        }
    }
    Ok(Ok(()))
}
