//! A run's standard streams, in one vocabulary:
//! - [`Input`] and [`Output`]: what the host asks for (in a [`RunConfig`](crate::RunConfig));
//! - [`InputStream`] (`input.rs`) and [`OutputStream`] (`output.rs`): the live streams a
//!   run opens from them;
//! - [`Stdio`]: a run's three live streams. Which guest fds refer to them is the
//!   descriptor table's business ([`Descriptor::Stdin`], [`Descriptor::Output`]).
//!
//! [`Descriptor::Stdin`]: super::descriptor::Descriptor::Stdin
//! [`Descriptor::Output`]: super::descriptor::Descriptor::Output

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use super::descriptor::Descriptor;
use super::input::InputStream;
use super::output::OutputStream;
use super::stat::FileKind;

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

/// Which of a run's output streams a descriptor writes (it stays that stream wherever the
/// guest renumbers it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputName {
    Stdout,
    Stderr,
}

/// The three standard streams of one run.
pub(crate) struct Stdio {
    pub(crate) stdin: InputStream,
    stdout: OutputStream,
    stderr: OutputStream,
}

impl Stdio {
    pub(crate) fn open(stdin: &Input, stdout: &Output, stderr: &Output) -> Result<Stdio> {
        Ok(Stdio {
            stdin: InputStream::open(stdin)?,
            stdout: OutputStream::new(stdout, OutputName::Stdout),
            stderr: OutputStream::new(stderr, OutputName::Stderr),
        })
    }

    /// True when `d` is stdin, stdout or stderr and that is the host's descriptor,
    /// closed when the run started.
    pub(crate) fn is_closed(&self, d: &Descriptor) -> bool {
        match d {
            Descriptor::Stdin => self.stdin.is_closed(),
            Descriptor::Output(name) => self.output(*name).is_closed(),
            Descriptor::File(_) | Descriptor::Dir(_) => false,
        }
    }

    /// The stream `name` is.
    pub(crate) fn output(&self, name: OutputName) -> &OutputStream {
        match name {
            OutputName::Stdout => &self.stdout,
            OutputName::Stderr => &self.stderr,
        }
    }
}

/// A new non-blocking description of the pipe, FIFO or terminal at `fd` (of `kind`,
/// device `dev`, inode `ino`), for reading or (`write`) writing, when `/proc` offers one
/// and it is the same file (opening a pipe for writing fails while it has no reader).
/// The run then never changes the blocking mode of a description it shares with the
/// host. A pseudo-terminal's master side is never reopened: opening it makes a new
/// terminal.
pub(super) fn reopen(fd: BorrowedFd<'_>, kind: FileKind, dev: u64, ino: u64, write: bool) -> Option<File> {
    match kind {
        FileKind::Fifo => {}
        FileKind::CharDevice if is_terminal(fd) && !is_pty_master(fd) => {}
        _ => return None,
    }
    let f = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .and_then(crate::hostfd::above_stdio)
        .ok()?;
    (FileKind::of_fd(f.as_fd()) == Some((kind, dev, ino))).then_some(f)
}

/// True when `fd` is a terminal.
fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    std::io::IsTerminal::is_terminal(&fd)
}

/// True when `fd` is the master side of a pseudo-terminal (it has a terminal number).
fn is_pty_master(fd: BorrowedFd<'_>) -> bool {
    let mut n: libc::c_uint = 0;
    // SAFETY: `TIOCGPTN` writes one unsigned int, to `n`; on anything but a master it
    // fails and changes nothing.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPTN, &mut n) == 0 }
}
