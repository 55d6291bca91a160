//! File metadata in WASI's terms, shared by the descriptor (`fd.rs`) and path (`path.rs`)
//! functions.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use wasmtime_wasi::p1::types::{Filestat, Filetype};

use crate::io::FileKind;

/// The WASI file type of a host file type.
pub(super) fn filetype(ft: std::fs::FileType) -> Filetype {
    if ft.is_dir() {
        Filetype::Directory
    } else if ft.is_file() {
        Filetype::RegularFile
    } else if ft.is_symlink() {
        Filetype::SymbolicLink
    } else if ft.is_char_device() {
        Filetype::CharacterDevice
    } else if ft.is_block_device() {
        Filetype::BlockDevice
    } else if ft.is_socket() {
        Filetype::SocketStream
    } else {
        Filetype::Unknown
    }
}

/// What kind of [`FileDesc`](crate::io::FileDesc) a non-directory of this type is.
pub(super) fn file_kind(ft: std::fs::FileType) -> FileKind {
    if ft.is_file() {
        FileKind::Regular
    } else if ft.is_fifo() {
        FileKind::Fifo
    } else if ft.is_char_device() {
        FileKind::CharDevice
    } else if ft.is_block_device() {
        FileKind::BlockDevice
    } else if ft.is_socket() {
        FileKind::Socket
    } else {
        FileKind::Unknown
    }
}

/// Nanoseconds since the epoch, saturating (negative times are 0).
fn nanos(secs: i64, nsecs: i64) -> u64 {
    u64::try_from(secs).map_or(0, |s| s.saturating_mul(1_000_000_000).saturating_add(nsecs.max(0) as u64))
}

/// The WASI `filestat` of host metadata.
pub(super) fn filestat(m: &Metadata) -> Filestat {
    Filestat {
        dev: m.dev(),
        ino: m.ino(),
        filetype: filetype(m.file_type()),
        nlink: m.nlink(),
        size: m.size(),
        atim: nanos(m.atime(), m.atime_nsec()),
        mtim: nanos(m.mtime(), m.mtime_nsec()),
        ctim: nanos(m.ctime(), m.ctime_nsec()),
    }
}
