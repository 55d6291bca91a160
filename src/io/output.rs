//! The live stdout and stderr of a run.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Output, OutputCallback, Ready};

/// Live stdout or stderr of a run.
pub(crate) enum OutputStream {
    /// Host fd 1 or 2.
    Inherit(i32),
    Null,
    File(Arc<File>, Mutex<()>),
    Callback(OutputCallback, Mutex<()>),
}

impl OutputStream {
    pub(super) fn new(spec: &Output, host_fd: i32) -> OutputStream {
        match spec {
            Output::Inherit => OutputStream::Inherit(host_fd),
            Output::Null => OutputStream::Null,
            Output::File(f) => OutputStream::File(f.clone(), Mutex::new(())),
            Output::Callback(cb) => OutputStream::Callback(cb.clone(), Mutex::new(())),
        }
    }

    /// Writes all of `bytes` in one piece: concurrent writers never interleave within it.
    /// Descriptors are written in `PIPE_BUF` chunks, each after `ready` saw the descriptor
    /// writable, so a guest stuck on a full pipe still stops when its run ends (`ready`
    /// fails then). The inner result is the I/O error to report to the guest.
    pub(crate) fn write(&self, tid: i32, bytes: &[u8], ready: Ready<'_>) -> wasmtime::Result<std::io::Result<()>> {
        match self {
            OutputStream::Inherit(fd) => {
                // Hold std's lock (and flush its buffer) so Rust code in the host that
                // prints to the same stream neither interleaves nor reorders with us.
                if *fd == 1 {
                    let mut out = std::io::stdout().lock();
                    if let Err(e) = out.flush() {
                        return Ok(Err(e));
                    }
                    write_fd(rustix::stdio::stdout(), bytes, ready)
                } else {
                    let _err = std::io::stderr().lock();
                    write_fd(rustix::stdio::stderr(), bytes, ready)
                }
            }
            OutputStream::Null => Ok(Ok(())),
            OutputStream::File(f, lock) => {
                let _g = lock.lock();
                write_fd(f.as_fd(), bytes, ready)
            }
            OutputStream::Callback(cb, lock) => {
                let _g = lock.lock();
                cb(tid, bytes);
                Ok(Ok(()))
            }
        }
    }
}

/// Writes all of `bytes` to `fd`, at most `PIPE_BUF` at a time, each when `fd` is writable.
fn write_fd(fd: BorrowedFd<'_>, mut bytes: &[u8], ready: Ready<'_>) -> wasmtime::Result<std::io::Result<()>> {
    const PIPE_BUF: usize = 4096;
    while !bytes.is_empty() {
        ready(fd)?;
        match rustix::io::write(fd, &bytes[..bytes.len().min(PIPE_BUF)]) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(e) => return Ok(Err(e.into())),
        }
    }
    Ok(Ok(()))
}
