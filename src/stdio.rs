//! Where a run's stdin comes from and where its stdout and stderr go.
//!
//! A [`RunConfig`](crate::RunConfig) holds the specs; each run turns them into live streams
//! ([`Streams`]) when it starts. The WASI glue in `wasi/stdio.rs` reads and writes through
//! them without holding the WASI context lock.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use parking_lot::Mutex;

/// Receives what one guest thread wrote with one `fd_write`: `(tid, bytes)`.
pub type OutputCallback = Arc<dyn Fn(i32, &[u8]) + Send + Sync>;

/// Where stdout or stderr goes.
#[derive(Clone, Default)]
pub enum Output {
    /// The host process's own stdout / stderr (default).
    #[default]
    Inherit,
    /// Discarded; writes succeed.
    Null,
    /// An open file or descriptor, shared by every run that uses this config.
    File(Arc<File>),
    /// Handed to a callback, one call per `fd_write`; calls for one stream never overlap.
    Callback(OutputCallback),
}

/// Where stdin comes from.
#[derive(Clone, Default)]
pub enum Input {
    /// The host process's own stdin (default).
    #[default]
    Inherit,
    /// End of file at once.
    Null,
    /// These bytes, then end of file. Each run reads them from the start.
    Bytes(Arc<[u8]>),
    /// A file, opened by each run when it starts.
    Path(PathBuf),
    /// An open descriptor (a pipe, a socket, a file), shared by every run using this config.
    File(Arc<File>),
}

/// Live stdin of a run.
pub(crate) enum Source {
    /// A descriptor to poll and read; `None` is the host's fd 0.
    Fd(Option<Arc<File>>),
    Bytes { data: Arc<[u8]>, pos: Mutex<usize> },
    Null,
}

/// Live stdout or stderr of a run.
pub(crate) enum Sink {
    /// Host fd 1 or 2.
    Inherit(i32),
    Null,
    File(Arc<File>, Mutex<()>),
    Callback(OutputCallback, Mutex<()>),
}

impl Sink {
    fn new(spec: &Output, host_fd: i32) -> Sink {
        match spec {
            Output::Inherit => Sink::Inherit(host_fd),
            Output::Null => Sink::Null,
            Output::File(f) => Sink::File(f.clone(), Mutex::new(())),
            Output::Callback(cb) => Sink::Callback(cb.clone(), Mutex::new(())),
        }
    }

    /// Writes all of `bytes` in one piece: concurrent writers never interleave within it.
    /// Descriptors are written in `PIPE_BUF` chunks, each after `ready` saw the descriptor
    /// writable, so a guest stuck on a full pipe still stops when its run ends (`ready`
    /// fails then). The inner result is the I/O error to report to the guest.
    pub(crate) fn write(&self, tid: i32, bytes: &[u8], ready: Ready<'_>) -> wasmtime::Result<std::io::Result<()>> {
        match self {
            Sink::Inherit(fd) => {
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
            Sink::Null => Ok(Ok(())),
            Sink::File(f, lock) => {
                let _g = lock.lock();
                write_fd(f.as_fd(), bytes, ready)
            }
            Sink::Callback(cb, lock) => {
                let _g = lock.lock();
                cb(tid, bytes);
                Ok(Ok(()))
            }
        }
    }
}

/// Blocks until a descriptor is writable; fails when the run ends.
pub(crate) type Ready<'a> = &'a dyn Fn(BorrowedFd<'_>) -> wasmtime::Result<()>;

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

/// The three standard streams of one run.
pub(crate) struct Streams {
    pub(crate) stdin: Source,
    pub(crate) stdout: Sink,
    pub(crate) stderr: Sink,
}

impl Streams {
    pub(crate) fn open(stdin: &Input, stdout: &Output, stderr: &Output) -> Result<Streams> {
        let stdin = match stdin {
            Input::Inherit => Source::Fd(None),
            Input::Null => Source::Null,
            Input::Bytes(b) => Source::Bytes { data: b.clone(), pos: Mutex::new(0) },
            Input::Path(p) => Source::Fd(Some(Arc::new(
                File::open(p).with_context(|| format!("opening {} as the guest's stdin", p.display()))?,
            ))),
            Input::File(f) => Source::Fd(Some(f.clone())),
        };
        Ok(Streams { stdin, stdout: Sink::new(stdout, 1), stderr: Sink::new(stderr, 2) })
    }

    pub(crate) fn sink(&self, fd: i32) -> &Sink {
        if fd == 1 { &self.stdout } else { &self.stderr }
    }
}
