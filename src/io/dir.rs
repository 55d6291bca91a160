//! A directory descriptor: a preopen, or a directory the guest opened.

use std::fs::File;

/// A directory descriptor.
pub(crate) struct DirDesc {
    /// The host directory, opened `O_DIRECTORY`; paths resolve beneath it only.
    pub(crate) dir: File,
    /// The guest path of a preopen (`fd_prestat_dir_name`); `None` for opened dirs.
    pub(crate) preopen: Option<String>,
    /// Nothing under it may be created, changed or removed.
    pub(crate) read_only: bool,
}
