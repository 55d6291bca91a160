//! A run's standard streams, in one vocabulary:
//! - [`Input`] and [`Output`]: what the host asks for (in a [`RunConfig`](crate::RunConfig));
//! - [`InputStream`] and [`OutputStream`]: the live streams a run opens from them;
//! - [`Stdio`]: a run's three live streams;
//! - [`FdTable`]: a run's descriptors, shared by its threads (the streams among them).
//!
//! The streams block only through a `ready` function the caller passes (wait until a
//! descriptor is readable or writable, fail when the run ends), so this module knows
//! nothing of runs and the WASI glue in `host/wasi/fd.rs` keeps them interruptible.

mod dir;
mod fds;
mod file;
mod input;
mod output;

use std::fs::File;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

pub(crate) use dir::{DirCursor, DirDesc};
pub(crate) use fds::{Descriptor, FdError, FdTable, HostFd, OpenFd};
pub(crate) use file::{FileDesc, FileKind};
pub(crate) use input::InputStream;
pub(crate) use output::OutputStream;

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

/// Blocks until a descriptor is ready (readable for input, writable for output); fails
/// when the run ends.
pub(crate) type Ready<'a> = &'a dyn Fn(BorrowedFd<'_>) -> wasmtime::Result<()>;

/// The three standard streams of one run. Which guest fds refer to them is the
/// descriptor table's business ([`Descriptor::Stdin`], [`Descriptor::Output`]).
pub(crate) struct Stdio {
    pub(crate) stdin: InputStream,
    stdout: OutputStream,
    stderr: OutputStream,
}

impl Stdio {
    pub(crate) fn open(stdin: &Input, stdout: &Output, stderr: &Output) -> Result<Stdio> {
        Ok(Stdio {
            stdin: InputStream::open(stdin)?,
            stdout: OutputStream::new(stdout, 1),
            stderr: OutputStream::new(stderr, 2),
        })
    }

    /// The output stream for fd 1 (stdout) or 2 (stderr).
    pub(crate) fn output(&self, fd: i32) -> &OutputStream {
        if fd == 1 {
            &self.stdout
        } else {
            &self.stderr
        }
    }
}
