//! A non-directory descriptor: a regular file, a FIFO, a device or a socket.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// What kind of object a [`FileDesc`] is: regular files are read and written directly;
/// the others may block, so their host descriptor is non-blocking and each wait goes
/// through the run's teardown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    Unknown,
}

impl FileKind {
    /// True when reads or writes can block indefinitely (pipes, ttys, sockets).
    pub(crate) fn may_block(self) -> bool {
        !matches!(self, FileKind::Regular | FileKind::BlockDevice)
    }
}

/// A non-directory descriptor.
pub(crate) struct FileDesc {
    pub(crate) file: File,
    pub(crate) kind: FileKind,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The guest's `fdflags::append` (also set on the host descriptor).
    pub(crate) append: AtomicBool,
    /// The guest's `fdflags::nonblock`: return `again` instead of waiting. The host
    /// descriptor of a [`FileKind::may_block`] file is non-blocking either way.
    pub(crate) nonblock: AtomicBool,
    /// Serialises `fd_read`/`fd_write`/`fd_seek` that use the file position, so that a
    /// seek and a read of two threads cannot interleave halfway (positional I/O, `pread`
    /// and `pwrite`, does not take it).
    pub(crate) position: Mutex<()>,
}

impl FileDesc {
    pub(crate) fn new(
        file: File,
        kind: FileKind,
        readable: bool,
        writable: bool,
        append: bool,
        nonblock: bool,
    ) -> FileDesc {
        FileDesc {
            file,
            kind,
            readable,
            writable,
            append: AtomicBool::new(append),
            nonblock: AtomicBool::new(nonblock),
            position: Mutex::new(()),
        }
    }

    pub(crate) fn is_nonblock(&self) -> bool {
        self.nonblock.load(Ordering::Relaxed)
    }
}
