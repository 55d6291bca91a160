//! What a guest descriptor refers to: the run's stdin, stdout or stderr, a file, or a
//! directory.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::readdir::DirCursor;
use super::stat::FileKind;
use super::stdio::OutputName;
use crate::wait::EndLock;

/// What a guest descriptor refers to.
pub(crate) enum Descriptor {
    /// The run's stdin ([`Stdio::stdin`](super::stdio::Stdio)), wherever it was renumbered to.
    Stdin,
    /// The run's stdout or stderr stream, wherever it was renumbered to.
    Output(OutputName),
    /// Anything that is not a directory: a regular file, a FIFO, a character device, a
    /// socket, opened by `path_open` (or given by the host).
    File(FileDesc),
    /// A directory: a preopen or one opened by `path_open`.
    Dir(DirDesc),
}

/// A non-directory descriptor: a regular file, a FIFO, a device or a socket. Regular files
/// are read and written directly; the others may block ([`FileKind::may_block`]), so their
/// host descriptor is non-blocking and each wait goes through the run's signal.
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
    /// and `pwrite`, does not take it). Taken through [`Call::position`]: a thread
    /// queued for it stops when its run ends, and none starts I/O under it after that.
    ///
    /// [`Call::position`]: super::Call::position
    pub(crate) position: EndLock,
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
            position: EndLock::new(),
        }
    }

    pub(crate) fn is_nonblock(&self) -> bool {
        self.nonblock.load(Ordering::Relaxed)
    }
}

/// A directory descriptor: a preopen, or a directory the guest opened.
pub(crate) struct DirDesc {
    /// The host directory, opened `O_DIRECTORY`; paths resolve beneath it only.
    pub(crate) dir: File,
    /// The guest path of a preopen (`fd_prestat_dir_name`); `None` for opened dirs.
    pub(crate) preopen: Option<String>,
    /// Nothing under it may be created, changed or removed (inherited by every
    /// directory opened beneath it).
    pub(crate) read_only: bool,
    /// Where the last `fd_readdir` stopped, so that reading a large directory in many
    /// small calls resumes where it left off instead of starting over each time.
    pub(crate) cursor: Mutex<Option<DirCursor>>,
}

impl DirDesc {
    pub(crate) fn new(dir: File, preopen: Option<String>, read_only: bool) -> DirDesc {
        DirDesc { dir, preopen, read_only, cursor: Mutex::new(None) }
    }
}
