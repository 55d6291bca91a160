//! Descriptor metadata: `fd_fdstat_get`, `fd_fdstat_set_flags`, `fd_fdstat_set_rights`,
//! `fd_filestat_get`, `fd_filestat_set_size`, `fd_filestat_set_times`, `fd_prestat_get`,
//! `fd_prestat_dir_name`.
//!
//! Errno choices follow Wasmtime 48's preview 1: `fd_fdstat_set_rights` is `notsup`
//! (`badf` for stdio); only `append` and `nonblock` can be set on a file after it is
//! opened.

use std::sync::atomic::Ordering;

use wasmtime_wasi::p1::types::{self, Errno};
use wiggle::{GuestMemory, GuestPtr};

use super::descriptor::{Descriptor, DirDesc};
use super::fd::file_of;
use super::{errno, stat, Call};

/// The file type stdio reports: a character device when it is a terminal (what
/// `isatty` looks for), else unknown, as Wasmtime.
fn stdio_filetype(terminal: bool) -> types::Filetype {
    if terminal {
        types::Filetype::CharacterDevice
    } else {
        types::Filetype::Unknown
    }
}

/// The rights Wasmtime 48 reports for a preopened directory (a fixed set that many guest
/// libraries expect), and those it lets files opened beneath inherit.
fn preopen_rights() -> (types::Rights, types::Rights) {
    use types::Rights as R;
    let base = R::PATH_CREATE_DIRECTORY
        | R::PATH_CREATE_FILE
        | R::PATH_LINK_SOURCE
        | R::PATH_LINK_TARGET
        | R::PATH_OPEN
        | R::FD_READDIR
        | R::PATH_READLINK
        | R::PATH_RENAME_SOURCE
        | R::PATH_RENAME_TARGET
        | R::PATH_SYMLINK
        | R::PATH_REMOVE_DIRECTORY
        | R::PATH_UNLINK_FILE
        | R::PATH_FILESTAT_GET
        | R::PATH_FILESTAT_SET_TIMES
        | R::FD_FILESTAT_GET
        | R::FD_FILESTAT_SET_TIMES;
    let inheriting = base
        | R::FD_DATASYNC
        | R::FD_READ
        | R::FD_SEEK
        | R::FD_FDSTAT_SET_FLAGS
        | R::FD_SYNC
        | R::FD_TELL
        | R::FD_WRITE
        | R::FD_ADVISE
        | R::FD_ALLOCATE
        | R::FD_FILESTAT_GET
        | R::FD_FILESTAT_SET_SIZE
        | R::FD_FILESTAT_SET_TIMES
        | R::POLL_FD_READWRITE;
    (base, inheriting)
}

pub(super) fn fd_fdstat_get(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
) -> Result<types::Fdstat, types::Error> {
    use types::Rights as R;
    let stdio = |filetype, rights| types::Fdstat {
        fs_filetype: filetype,
        fs_flags: types::Fdflags::empty(),
        fs_rights_base: rights,
        fs_rights_inheriting: rights,
    };
    let desc = call.descriptor(fd)?;
    match &**desc {
        Descriptor::Stdin | Descriptor::Output(_) if call.wasi.stdio.is_closed(&desc) => Err(Errno::Badf.into()),
        Descriptor::Stdin => Ok(stdio(stdio_filetype(call.wasi.stdio.stdin.is_terminal()), R::FD_READ)),
        Descriptor::Output(name) => Ok(stdio(stdio_filetype(call.wasi.stdio.output(*name).is_terminal()), R::FD_WRITE)),
        Descriptor::Dir(d) if d.preopen.is_some() => {
            let (base, inheriting) = preopen_rights();
            Ok(types::Fdstat {
                fs_filetype: types::Filetype::Directory,
                fs_flags: types::Fdflags::empty(),
                fs_rights_base: base,
                fs_rights_inheriting: inheriting,
            })
        }
        Descriptor::Dir(_) => {
            // As Wasmtime: all rights but seeking, resizing and writing.
            let rights = R::all() & !(R::FD_SEEK | R::FD_FILESTAT_SET_SIZE | R::PATH_FILESTAT_SET_SIZE | R::FD_WRITE);
            Ok(types::Fdstat {
                fs_filetype: types::Filetype::Directory,
                fs_flags: types::Fdflags::empty(),
                fs_rights_base: rights,
                fs_rights_inheriting: rights,
            })
        }
        Descriptor::File(f) => {
            let mut rights = R::all();
            if !f.readable {
                rights &= !(R::FD_READ | R::FD_READDIR);
            }
            if !f.writable {
                rights &= !R::FD_WRITE;
            }
            let mut flags = types::Fdflags::empty();
            if f.append.load(Ordering::Relaxed) {
                flags |= types::Fdflags::APPEND;
            }
            if f.is_nonblock() {
                flags |= types::Fdflags::NONBLOCK;
            }
            let host = rustix::fs::fcntl_getfl(&f.file).map_err(errno::sys)?;
            if host.contains(rustix::fs::OFlags::DSYNC) {
                flags |= types::Fdflags::DSYNC;
            }
            if host.contains(rustix::fs::OFlags::SYNC) {
                // Linux's O_RSYNC is O_SYNC.
                flags |= types::Fdflags::SYNC | types::Fdflags::RSYNC;
            }
            Ok(types::Fdstat {
                fs_filetype: f.kind.filetype(),
                fs_flags: flags,
                fs_rights_base: rights,
                fs_rights_inheriting: rights,
            })
        }
    }
}

/// Sets `append` and `nonblock` of a file (the only flags that can change after opening,
/// as Wasmtime: the sync flags are `inval`, stdio and directories `badf`).
pub(super) fn fd_fdstat_set_flags(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    flags: types::Fdflags,
) -> Result<(), types::Error> {
    let d = call.descriptor(fd)?;
    let f = file_of(&d)?;
    if flags.intersects(types::Fdflags::DSYNC | types::Fdflags::SYNC | types::Fdflags::RSYNC) {
        return Err(Errno::Inval.into());
    }
    let append = flags.contains(types::Fdflags::APPEND);
    // Under the position lock: a cursor write sees the old mode or the new one.
    let _pos = call.position(f)?;
    if append != f.append.load(Ordering::Relaxed) {
        let mut host = rustix::fs::fcntl_getfl(&f.file).map_err(errno::sys)?;
        host.set(rustix::fs::OFlags::APPEND, append);
        rustix::fs::fcntl_setfl(&f.file, host).map_err(errno::sys)?;
        f.append.store(append, Ordering::Relaxed);
    }
    f.nonblock.store(flags.contains(types::Fdflags::NONBLOCK), Ordering::Relaxed);
    Ok(())
}

/// Rights cannot be changed (Wasmtime 48: `notsup`; `badf` for stdio).
pub(super) fn fd_fdstat_set_rights(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    _base: types::Rights,
    _inheriting: types::Rights,
) -> Result<(), types::Error> {
    match &**call.descriptor(fd)? {
        Descriptor::Stdin | Descriptor::Output(_) => Err(Errno::Badf.into()),
        Descriptor::File(_) | Descriptor::Dir(_) => Err(Errno::Notsup.into()),
    }
}

/// Stdio reports only its file type (zeros elsewhere, as Wasmtime); files and directories
/// their host metadata (with the host's device and inode numbers).
pub(super) fn fd_filestat_get(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
) -> Result<types::Filestat, types::Error> {
    let stdio = |filetype| types::Filestat { dev: 0, ino: 0, filetype, nlink: 0, size: 0, atim: 0, mtim: 0, ctim: 0 };
    let desc = call.descriptor(fd)?;
    match &**desc {
        Descriptor::Stdin | Descriptor::Output(_) if call.wasi.stdio.is_closed(&desc) => Err(Errno::Badf.into()),
        Descriptor::Stdin => Ok(stdio(stdio_filetype(call.wasi.stdio.stdin.is_terminal()))),
        Descriptor::Output(name) => Ok(stdio(stdio_filetype(call.wasi.stdio.output(*name).is_terminal()))),
        Descriptor::File(f) => stat::filestat_of(&f.file),
        Descriptor::Dir(d) => stat::filestat_of(&d.dir),
    }
}

pub(super) fn fd_filestat_set_size(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    size: types::Filesize,
) -> Result<(), types::Error> {
    let d = call.descriptor(fd)?;
    rustix::fs::ftruncate(&file_of(&d)?.file, size).map_err(errno::sys)
}

pub(super) fn fd_filestat_set_times(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    atim: types::Timestamp,
    mtim: types::Timestamp,
    fst_flags: types::Fstflags,
) -> Result<(), types::Error> {
    let times = stat::timestamps(atim, mtim, fst_flags)?;
    match &**call.descriptor(fd)? {
        Descriptor::File(f) => rustix::fs::futimens(&f.file, &times).map_err(errno::sys),
        Descriptor::Dir(d) if d.read_only => Err(Errno::Perm.into()),
        Descriptor::Dir(d) => rustix::fs::futimens(&d.dir, &times).map_err(errno::sys),
        Descriptor::Stdin | Descriptor::Output(_) => Err(Errno::Badf.into()),
    }
}

pub(super) fn fd_prestat_get(
    call: &Call<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
) -> Result<types::Prestat, types::Error> {
    match &**call.descriptor(fd)? {
        Descriptor::Dir(DirDesc { preopen: Some(p), .. }) => {
            let pr_name_len = u32::try_from(p.len()).map_err(|_| Errno::Nametoolong)?;
            Ok(types::Prestat::Dir(types::PrestatDir { pr_name_len }))
        }
        _ => Err(Errno::Badf.into()),
    }
}

/// The guest path of a preopen, without a terminating NUL; `nametoolong` when it does
/// not fit, `notdir` for anything but a preopen (as Wasmtime).
pub(super) fn fd_prestat_dir_name(
    call: &Call<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    path: GuestPtr<u8>,
    path_max_len: types::Size,
) -> Result<(), types::Error> {
    match &**call.descriptor(fd)? {
        Descriptor::Dir(DirDesc { preopen: Some(p), .. }) => {
            let len = u32::try_from(p.len()).map_err(|_| Errno::Nametoolong)?;
            if len > path_max_len {
                return Err(Errno::Nametoolong.into());
            }
            memory.copy_from_slice(p.as_bytes(), path.as_array(len))?;
            Ok(())
        }
        _ => Err(Errno::Notdir.into()),
    }
}
