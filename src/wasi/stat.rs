//! Host files in WASI's terms, for every call that asks what a file is: its kind (from
//! the host's mode bits or a directory entry's type), its WASI file type, its `filestat`,
//! and the timestamps of `*_filestat_set_times`.

use std::fs::File;
use std::os::fd::BorrowedFd;

use cap_primitives::fs::{Metadata, MetadataExt as _};
use rustix::fs::{FileType, Timespec, Timestamps};
use wasmtime_wasi::p1::types::{self, Errno, Filestat, Filetype, Fstflags};

use super::errno;

/// What kind of object a host file is. A [`FileDesc`](super::descriptor::FileDesc) is
/// never a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    Unknown,
}

impl FileKind {
    /// The kind of a host file type (of `st_mode`, or a directory entry's `d_type`).
    pub(crate) fn of(t: FileType) -> FileKind {
        match t {
            FileType::RegularFile => FileKind::Regular,
            FileType::Directory => FileKind::Directory,
            FileType::Symlink => FileKind::Symlink,
            FileType::Fifo => FileKind::Fifo,
            FileType::CharacterDevice => FileKind::CharDevice,
            FileType::BlockDevice => FileKind::BlockDevice,
            FileType::Socket => FileKind::Socket,
            FileType::Unknown => FileKind::Unknown,
        }
    }

    /// The kind of a file with these mode bits (`st_mode`).
    pub(crate) fn of_mode(mode: u32) -> FileKind {
        FileKind::of(FileType::from_raw_mode(mode))
    }

    /// The kind of the file open at `fd`, with its device and inode numbers; `None` when
    /// `fstat` fails.
    pub(crate) fn of_fd(fd: BorrowedFd<'_>) -> Option<(FileKind, u64, u64)> {
        rustix::fs::fstat(fd).ok().map(|st| (FileKind::of_mode(st.st_mode), st.st_dev, st.st_ino))
    }

    /// True when reads or writes can block indefinitely (pipes, ttys, sockets).
    pub(crate) fn may_block(self) -> bool {
        !matches!(self, FileKind::Regular | FileKind::BlockDevice)
    }

    /// The WASI file type (FIFOs have no WASI code: `unknown`, as Wasmtime 48).
    pub(crate) fn filetype(self) -> Filetype {
        match self {
            FileKind::Regular => Filetype::RegularFile,
            FileKind::Directory => Filetype::Directory,
            FileKind::Symlink => Filetype::SymbolicLink,
            FileKind::CharDevice => Filetype::CharacterDevice,
            FileKind::BlockDevice => Filetype::BlockDevice,
            FileKind::Socket => Filetype::SocketStream,
            FileKind::Fifo | FileKind::Unknown => Filetype::Unknown,
        }
    }
}

/// Nanoseconds since the epoch, saturating (negative times are 0).
pub(super) fn nanos(secs: i64, nsecs: i64) -> u64 {
    u64::try_from(secs).map_or(0, |s| s.saturating_mul(1_000_000_000).saturating_add(nsecs.max(0) as u64))
}

/// The WASI `filestat` of host metadata, with the host's device and inode numbers (not
/// Wasmtime 48's hash of them).
pub(super) fn filestat(m: &Metadata) -> Filestat {
    Filestat {
        dev: m.dev(),
        ino: m.ino(),
        filetype: FileKind::of_mode(m.mode()).filetype(),
        nlink: m.nlink(),
        size: m.size(),
        atim: nanos(m.atime(), m.atime_nsec()),
        mtim: nanos(m.mtime(), m.mtime_nsec()),
        ctim: nanos(m.ctime(), m.ctime_nsec()),
    }
}

/// The WASI `filestat` of an open file or directory.
pub(super) fn filestat_of(file: &File) -> Result<Filestat, types::Error> {
    Ok(filestat(&Metadata::from_just_metadata(file.metadata().map_err(errno::io)?)))
}

/// The times `fd_filestat_set_times` and `path_filestat_set_times` set: each of `atim`
/// and `mtim` set, now, or left alone, as `fst_flags` says.
pub(super) fn timestamps(
    atim: types::Timestamp,
    mtim: types::Timestamp,
    fst_flags: Fstflags,
) -> Result<Timestamps, types::Error> {
    Ok(Timestamps {
        last_access: timespec(fst_flags.contains(Fstflags::ATIM), fst_flags.contains(Fstflags::ATIM_NOW), atim)?,
        last_modification: timespec(fst_flags.contains(Fstflags::MTIM), fst_flags.contains(Fstflags::MTIM_NOW), mtim)?,
    })
}

/// One time for `utimensat`/`futimens`: set, now, or left alone (`inval` for both set and
/// now, as Wasmtime 48).
fn timespec(set: bool, now: bool, ts: types::Timestamp) -> Result<Timespec, types::Error> {
    Ok(match (set, now) {
        (true, true) => return Err(Errno::Inval.into()),
        (true, false) => Timespec { tv_sec: (ts / 1_000_000_000) as i64, tv_nsec: (ts % 1_000_000_000) as _ },
        (false, true) => Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_NOW },
        (false, false) => Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT },
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    /// Every kind a descriptor can be, from the host's own objects, with the WASI file
    /// type each reports and whether reading it may block.
    #[test]
    fn host_files_get_their_kind_filetype_and_blocking() {
        let dir = File::open(std::env::temp_dir()).unwrap();
        let regular = File::open("/proc/self/exe").unwrap();
        let null = File::open("/dev/null").unwrap();
        let (pipe, _writer) = rustix::pipe::pipe().unwrap();
        let (socket, _peer) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let cases = [
            (dir.as_fd(), FileKind::Directory, Filetype::Directory, true),
            (regular.as_fd(), FileKind::Regular, Filetype::RegularFile, false),
            (null.as_fd(), FileKind::CharDevice, Filetype::CharacterDevice, true),
            (pipe.as_fd(), FileKind::Fifo, Filetype::Unknown, true),
            (socket.as_fd(), FileKind::Socket, Filetype::SocketStream, true),
        ];
        for (fd, kind, filetype, may_block) in cases {
            let (got, ..) = FileKind::of_fd(fd).unwrap();
            assert_eq!((got, got.filetype(), got.may_block()), (kind, filetype, may_block), "{kind:?}");
        }
        let link = std::fs::symlink_metadata("/proc/self/exe").unwrap();
        assert_eq!(FileKind::of_mode(std::os::unix::fs::MetadataExt::mode(&link)).filetype(), Filetype::SymbolicLink);
        // A block device is read directly, as a regular file.
        assert!(!FileKind::BlockDevice.may_block());
        assert_eq!(FileKind::BlockDevice.filetype(), Filetype::BlockDevice);
    }

    #[test]
    fn times_are_set_now_or_left_alone_and_never_both() {
        let t = timestamps(3_000_000_007, 0, Fstflags::ATIM | Fstflags::MTIM_NOW).unwrap();
        assert_eq!((t.last_access.tv_sec, t.last_access.tv_nsec), (3, 7));
        assert_eq!(t.last_modification.tv_nsec, rustix::fs::UTIME_NOW);
        let t = timestamps(1, 1, Fstflags::empty()).unwrap();
        assert_eq!(
            (t.last_access.tv_nsec, t.last_modification.tv_nsec),
            (rustix::fs::UTIME_OMIT, rustix::fs::UTIME_OMIT)
        );
        assert!(timestamps(1, 1, Fstflags::MTIM | Fstflags::MTIM_NOW).is_err());
        assert_eq!(nanos(-1, 5), 0, "before the epoch");
        assert_eq!(nanos(2, 5), 2_000_000_005);
    }
}
