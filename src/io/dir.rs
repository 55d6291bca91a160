//! A directory descriptor: a preopen, or a directory the guest opened.

use std::fs::File;

use parking_lot::Mutex;

/// A directory descriptor.
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

/// A directory stream with its position in WASI cookies: entry 1 is ".", entry 2 is
/// "..", then the host's entries (without its own "." and ".."), numbered from 3. The
/// cookie of an entry (its `d_next`) is its number, so cookie `c` asks for entries from
/// `c + 1` on.
pub(crate) struct DirCursor {
    /// A stream over a descriptor of its own (`openat(dir, ".")`), so its position is
    /// private to this cursor.
    pub(crate) stream: rustix::fs::Dir,
    /// That descriptor, counted against the run's limit while the cursor lives.
    pub(crate) _held: super::HostFd,
    /// How many entries have been consumed: the cookie the stream stands at.
    pub(crate) pos: u64,
    /// Entry `pos + 1`, already taken from the stream but not handed over whole (the
    /// guest's buffer ended inside it; the guest asks again with cookie `pos`).
    pub(crate) pending: Option<rustix::fs::DirEntry>,
}
