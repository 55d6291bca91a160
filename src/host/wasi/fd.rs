//! Descriptor I/O and state: `fd_read`, `fd_write`, `fd_pread`, `fd_pwrite`, `fd_seek`,
//! `fd_tell`, `fd_close`, `fd_renumber`, `fd_sync`, `fd_datasync`, `fd_advise`,
//! `fd_allocate`, `fd_fdstat_*`, `fd_filestat_*`, `fd_prestat_*`, for every kind of
//! descriptor:
//! - stdin ([`Descriptor::Stdin`]) reads the run's input stream, waiting through the
//!   run's teardown; stdout and stderr ([`Descriptor::Output`]) write the run's output
//!   streams, one whole `fd_write` at a time (one callback call per `fd_write`). They
//!   stay the run's streams wherever the guest renumbers them;
//! - files ([`Descriptor::File`]) are read and written on the calling thread with plain
//!   system calls; cursor I/O and seeks of regular files take the descriptor's
//!   `position` lock, positional I/O takes none. Files that can block (pipes, FIFOs,
//!   character devices, sockets) have a non-blocking host descriptor: a call that would
//!   block waits through the teardown, or returns `again` if the guest set
//!   `fdflags::nonblock`;
//! - directories ([`Descriptor::Dir`]) answer fdstat, filestat, prestat and set_times;
//! - `fd_sync` and `fd_datasync`, which can block in the kernel for as long as the storage
//!   takes, run on a pool thread holding its own reference to the descriptor, the calling
//!   thread waiting through the teardown ([`Group::run_blocking`](crate::group::Group)),
//!   so the run can end while a sync is in flight (it then finishes on its own).
//!
//! Limits on what one call moves (see `iovec.rs`): at most 1024 iovecs (`inval` past
//! that), at most 16 MiB per call (more is a short read or write; reads of streams ask
//! for at most 1 MiB), and copy buffers of at most 64 MiB in flight across all threads of
//! a run beyond 64 KiB that each call always gets (a call finding that budget spent
//! takes less: a short read or write). Reads and writes of regular files on shared
//! memory go straight between the file and the guest's buffers, without a copy
//! (`direct.rs`); so do reads into one buffer of unshared memory.
//!
//! Errno choices follow Wasmtime 48's preview 1: reading a descriptor that is not open
//! for reading, or writing one not open for writing, is `badf`; reading or writing a
//! directory is `badf`; `fd_pread`/`fd_seek`/`fd_tell` on stdin, `fd_pwrite`/`fd_seek`/
//! `fd_tell` on stdout and stderr are `spipe`; `fd_allocate` is `notsup`;
//! `fd_fdstat_set_rights` is `notsup` (`badf` for stdio); `fd_renumber` needs both
//! descriptors open.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;

use rustix::event::PollFlags;
use wasmtime_wasi::p1::types::{self, Errno};
use wiggle::{GuestMemory, GuestPtr};

use super::{direct, errno, iovec, stat, Ctx};
use crate::io::{Descriptor, FileDesc, FileKind};

/// Most bytes one read of a stream (stdin, a pipe, a socket, a device) asks for: a pipe
/// holds at most 1 MiB (Linux's `pipe-max-size`), so a larger buffer would only be
/// allocated to stay empty.
const MAX_STREAM_READ: usize = 1 << 20;

/// Reads a regular file at its cursor (`None`) or at an offset, into a new buffer of at
/// most `len` bytes.
fn read_regular(f: &FileDesc, len: usize, at: Option<u64>) -> rustix::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    errno::retry_intr(|| match at {
        None => {
            let _pos = f.position.lock();
            rustix::io::read(&f.file, rustix::buffer::spare_capacity(&mut buf))
        }
        Some(off) => rustix::io::pread(&f.file, rustix::buffer::spare_capacity(&mut buf), off),
    })?;
    Ok(buf)
}

/// Runs `op` on a file that may block until it no longer fails with `EAGAIN`, waiting
/// for `flags` through the teardown in between, unless the guest asked for `nonblock`.
fn retry_blocking<T>(
    ctx: &Ctx<'_>,
    f: &FileDesc,
    flags: PollFlags,
    mut op: impl FnMut() -> rustix::io::Result<T>,
) -> Result<T, types::Error> {
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                if f.is_nonblock() {
                    return Err(Errno::Again.into());
                }
                ctx.group.teardown.signal.wait_fd(f.file.as_fd(), flags, None).map_err(errno::trap)?;
            }
            Err(e) => return Err(errno::sys(e)),
        }
    }
}

/// `fd_read` (`at` `None`) or `fd_pread` of a file.
fn read_file(
    ctx: &Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    f: &FileDesc,
    iovs: types::IovecArray,
    at: Option<u64>,
) -> Result<types::Size, types::Error> {
    if !f.readable {
        return Err(Errno::Badf.into());
    }
    // The array is read once: its buffers serve the capacity and the direct reads.
    let bufs = iovec::buffers(memory, iovs)?;
    let cap = iovec::sum(&bufs);
    if cap == 0 {
        return Ok(0);
    }
    if !f.kind.may_block() {
        // Unshared memory and one buffer: read straight into it, no copy.
        if let (GuestMemory::Unshared(_), Some(one)) = (&*memory, iovec::single(&bufs)) {
            if let Some(slice) = memory.as_slice_mut(one)? {
                let slice = match slice.len() > iovec::MAX_CALL {
                    true => &mut slice[..iovec::MAX_CALL],
                    false => slice,
                };
                let n = errno::retry_intr(|| match at {
                    None => {
                        let _pos = f.position.lock();
                        rustix::io::read(&f.file, &mut *slice)
                    }
                    Some(off) => rustix::io::pread(&f.file, &mut *slice, off),
                });
                return size(n.map_err(errno::sys)?);
            }
        }
        // Shared memory: straight into the guest's buffers, no copy (unless one lies
        // outside memory: the copy below traps as Wasmtime does, on what it would fill).
        if let GuestMemory::Shared(shared) = &*memory {
            if let Some(direct) = direct::Iovecs::for_read(shared, &bufs) {
                let _pos = at.is_none().then(|| f.position.lock());
                return size(direct::read(&f.file, &direct, at)?);
            }
        }
        let grant = iovec::reserve(&ctx.group.fds, cap);
        let data = read_regular(f, grant.len, at).map_err(errno::sys)?;
        iovec::scatter(memory, iovs, &data)?;
        return size(data.len());
    }
    let grant = iovec::reserve(&ctx.group.fds, cap.min(MAX_STREAM_READ));
    let mut buf = Vec::with_capacity(grant.len);
    retry_blocking(ctx, f, PollFlags::IN, || {
        let n = match at {
            None => rustix::io::read(&f.file, rustix::buffer::spare_capacity(&mut buf)),
            Some(off) => rustix::io::pread(&f.file, rustix::buffer::spare_capacity(&mut buf), off),
        }?;
        if n == 0 && f.kind == FileKind::Fifo && !f.is_nonblock() && !fifo_writer_left(f) {
            // No writer has opened the FIFO since `path_open` (which never waits for
            // one): POSIX's blocking open would still be waiting, so wait for data or
            // for a writer to come and go instead of reporting end of file.
            return Err(rustix::io::Errno::AGAIN);
        }
        Ok(n)
    })?;
    iovec::scatter(memory, iovs, &buf)?;
    size(buf.len())
}

/// True when a FIFO read end reports hang-up with nothing to read: a writer has been
/// and gone (Linux suppresses `POLLHUP` on a non-blocking read end until it has seen a
/// writer), so a read of 0 bytes is end of file.
fn fifo_writer_left(f: &FileDesc) -> bool {
    let mut fds = [rustix::event::PollFd::new(&f.file, PollFlags::IN)];
    let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(_) => {
            let ev = fds[0].revents();
            ev.contains(PollFlags::HUP) && !ev.contains(PollFlags::IN)
        }
        Err(_) => true,
    }
}

/// `fd_write` (`at` `None`) or `fd_pwrite` of a file. In append mode the host descriptor
/// is `O_APPEND`, so both append (Linux ignores a `pwrite` offset then, as Wasmtime).
fn write_file(
    ctx: &Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    f: &FileDesc,
    ciovs: types::CiovecArray,
    at: Option<u64>,
) -> Result<types::Size, types::Error> {
    if !f.writable {
        return Err(Errno::Badf.into());
    }
    // The array is read once: its buffers serve the total and the direct writes.
    let bufs = iovec::const_buffers(memory, ciovs)?;
    let total = iovec::sum(&bufs);
    if total == 0 {
        return Ok(0);
    }
    if let (GuestMemory::Shared(shared), false) = (&*memory, f.kind.may_block()) {
        // Shared memory and a regular file: straight from the guest's buffers, no copy.
        let direct = direct::Iovecs::for_write(shared, &bufs)?;
        let _pos = at.is_none().then(|| f.position.lock());
        return size(direct::write(&f.file, &direct, at)?);
    }
    let grant = iovec::reserve(&ctx.group.fds, total);
    let data = iovec::gather(memory, ciovs, grant.len)?;
    let write = || match at {
        None => rustix::io::write(&f.file, &data),
        Some(off) => rustix::io::pwrite(&f.file, &data, off),
    };
    let n = if f.kind.may_block() {
        retry_blocking(ctx, f, PollFlags::OUT, write)?
    } else {
        let _pos = at.is_none().then(|| f.position.lock());
        errno::retry_intr(write).map_err(errno::sys)?
    };
    size(n)
}

/// A byte count as a WASI size (always fits: calls move at most 16 MiB, or one guest
/// buffer).
fn size(n: usize) -> Result<types::Size, types::Error> {
    types::Size::try_from(n).map_err(|_| Errno::Overflow.into())
}

/// Waits until `fd` is ready for `flags`, or fails when the run ends.
fn wait(ctx: &Ctx<'_>, fd: BorrowedFd<'_>, flags: PollFlags) -> wasmtime::Result<()> {
    ctx.group.teardown.signal.wait_fd(fd, flags, None).map(drop)
}

/// `fd_read` of the run's stdin.
fn read_stdin(
    ctx: &Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    iovs: types::IovecArray,
) -> Result<types::Size, types::Error> {
    let cap = iovec::capacity(memory, iovs)?;
    let grant = iovec::reserve(&ctx.group.fds, cap.min(MAX_STREAM_READ));
    let ready = |fd: BorrowedFd<'_>| wait(ctx, fd, PollFlags::IN);
    let alive = || ctx.group.teardown.signal.bail_if_ending();
    let data = ctx.group.stdio.stdin.read(grant.len, &ready, &alive).map_err(errno::trap)?.map_err(errno::io)?;
    iovec::scatter(memory, iovs, &data)?;
    size(data.len())
}

/// `fd_write` of the run's stdout (1) or stderr (2): all the bytes of the call (up to
/// the limits), in one piece.
fn write_output(
    ctx: &Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    stream: i32,
    ciovs: types::CiovecArray,
) -> Result<types::Size, types::Error> {
    let total = iovec::total(memory, ciovs)?;
    let grant = iovec::reserve(&ctx.group.fds, total);
    let data = iovec::gather(memory, ciovs, grant.len)?;
    let ready = |fd: BorrowedFd<'_>| wait(ctx, fd, PollFlags::OUT);
    ctx.group.stdio.output(stream).write(ctx.tid, &data, &ready).map_err(errno::trap)?.map_err(errno::io)?;
    size(data.len())
}

/// The file behind `fd`, or `badf` for stdio and directories (Wasmtime's `get_file`).
fn file_of(d: &Descriptor) -> Result<&FileDesc, types::Error> {
    match d {
        Descriptor::File(f) => Ok(f),
        _ => Err(Errno::Badf.into()),
    }
}

/// The file behind a descriptor that has a position: stdio has none (`spipe`), a
/// directory is not a file (`badf`).
fn seekable(d: &Descriptor) -> Result<&FileDesc, types::Error> {
    match d {
        Descriptor::File(f) => Ok(f),
        Descriptor::Stdin | Descriptor::Output(_) => Err(Errno::Spipe.into()),
        Descriptor::Dir(_) => Err(Errno::Badf.into()),
    }
}

/// The WASI file type of a file descriptor, from what it was opened as.
fn file_filetype(f: &FileDesc) -> types::Filetype {
    match f.kind {
        FileKind::Regular => types::Filetype::RegularFile,
        FileKind::CharDevice => types::Filetype::CharacterDevice,
        FileKind::BlockDevice => types::Filetype::BlockDevice,
        FileKind::Socket => types::Filetype::SocketStream,
        FileKind::Fifo | FileKind::Unknown => types::Filetype::Unknown,
    }
}

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

/// One timestamp of `fd_filestat_set_times` as a `timespec` for `futimens`.
fn timespec(set: bool, ts: types::Timestamp, now: bool) -> Result<rustix::fs::Timespec, types::Error> {
    let nsec = |n: i64| rustix::fs::Timespec { tv_sec: 0, tv_nsec: n as _ };
    match (set, now) {
        (true, true) => Err(Errno::Inval.into()),
        (true, false) => {
            Ok(rustix::fs::Timespec { tv_sec: (ts / 1_000_000_000) as i64, tv_nsec: (ts % 1_000_000_000) as _ })
        }
        (false, true) => Ok(nsec(rustix::fs::UTIME_NOW as i64)),
        (false, false) => Ok(nsec(rustix::fs::UTIME_OMIT as i64)),
    }
}

pub(super) fn fd_advise(
    ctx: &mut Ctx<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    offset: types::Filesize,
    len: types::Filesize,
    advice: types::Advice,
) -> Result<(), types::Error> {
    let d = ctx.descriptor(fd)?;
    let f = file_of(&d)?;
    use rustix::fs::Advice as A;
    let advice = match advice {
        types::Advice::Normal => A::Normal,
        types::Advice::Sequential => A::Sequential,
        types::Advice::Random => A::Random,
        types::Advice::Willneed => A::WillNeed,
        types::Advice::Dontneed => A::DontNeed,
        types::Advice::Noreuse => A::NoReuse,
    };
    rustix::fs::fadvise(&f.file, offset, std::num::NonZeroU64::new(len), advice).map_err(errno::sys)
}

/// Wasmtime 48 does not implement it (`notsup` for any file).
pub(super) fn fd_allocate(
    ctx: &mut Ctx<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    _offset: types::Filesize,
    _len: types::Filesize,
) -> Result<(), types::Error> {
    let d = ctx.descriptor(fd)?;
    file_of(&d)?;
    Err(Errno::Notsup.into())
}

/// Removes `fd` from the table; any descriptor may be closed (stdio, preopens). The host
/// descriptor closes when no other thread still uses it.
pub(super) fn fd_close(ctx: &mut Ctx<'_>, _memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<(), types::Error> {
    let d = ctx.group.fds.remove(u32::from(fd)).map_err(errno::fd)?;
    drop(d);
    Ok(())
}

pub(super) fn fd_datasync(ctx: &mut Ctx<'_>, _memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<(), types::Error> {
    sync(ctx, fd, |f| rustix::fs::fdatasync(f))
}

pub(super) fn fd_fdstat_get(
    ctx: &mut Ctx<'_>,
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
    match &**ctx.descriptor(fd)? {
        Descriptor::Stdin => Ok(stdio(stdio_filetype(ctx.group.stdio.stdin.is_terminal()), R::FD_READ)),
        Descriptor::Output(n) => Ok(stdio(stdio_filetype(ctx.group.stdio.output(*n).is_terminal()), R::FD_WRITE)),
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
                fs_filetype: file_filetype(f),
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
    ctx: &mut Ctx<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    flags: types::Fdflags,
) -> Result<(), types::Error> {
    let d = ctx.descriptor(fd)?;
    let f = file_of(&d)?;
    if flags.intersects(types::Fdflags::DSYNC | types::Fdflags::SYNC | types::Fdflags::RSYNC) {
        return Err(Errno::Inval.into());
    }
    let append = flags.contains(types::Fdflags::APPEND);
    // Under the position lock: a cursor write sees the old mode or the new one.
    let _pos = f.position.lock();
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
    ctx: &mut Ctx<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    _fs_rights_base: types::Rights,
    _fs_rights_inheriting: types::Rights,
) -> Result<(), types::Error> {
    match &**ctx.descriptor(fd)? {
        Descriptor::Stdin | Descriptor::Output(_) => Err(Errno::Badf.into()),
        Descriptor::File(_) | Descriptor::Dir(_) => Err(Errno::Notsup.into()),
    }
}

/// Stdio reports only its file type (zeros elsewhere, as Wasmtime); files and directories
/// their host metadata (with the host's device and inode numbers).
pub(super) fn fd_filestat_get(
    ctx: &mut Ctx<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
) -> Result<types::Filestat, types::Error> {
    let stdio = |filetype| types::Filestat { dev: 0, ino: 0, filetype, nlink: 0, size: 0, atim: 0, mtim: 0, ctim: 0 };
    match &**ctx.descriptor(fd)? {
        Descriptor::Stdin => Ok(stdio(stdio_filetype(ctx.group.stdio.stdin.is_terminal()))),
        Descriptor::Output(n) => Ok(stdio(stdio_filetype(ctx.group.stdio.output(*n).is_terminal()))),
        Descriptor::File(f) => Ok(stat::filestat(&f.file.metadata().map_err(errno::io)?)),
        Descriptor::Dir(d) => Ok(stat::filestat(&d.dir.metadata().map_err(errno::io)?)),
    }
}

pub(super) fn fd_filestat_set_size(
    ctx: &mut Ctx<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    size: types::Filesize,
) -> Result<(), types::Error> {
    let d = ctx.descriptor(fd)?;
    rustix::fs::ftruncate(&file_of(&d)?.file, size).map_err(errno::sys)
}

pub(super) fn fd_filestat_set_times(
    ctx: &mut Ctx<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    atim: types::Timestamp,
    mtim: types::Timestamp,
    fst_flags: types::Fstflags,
) -> Result<(), types::Error> {
    use types::Fstflags as F;
    let times = rustix::fs::Timestamps {
        last_access: timespec(fst_flags.contains(F::ATIM), atim, fst_flags.contains(F::ATIM_NOW))?,
        last_modification: timespec(fst_flags.contains(F::MTIM), mtim, fst_flags.contains(F::MTIM_NOW))?,
    };
    match &**ctx.descriptor(fd)? {
        Descriptor::File(f) => rustix::fs::futimens(&f.file, &times).map_err(errno::sys),
        Descriptor::Dir(d) if d.read_only => Err(Errno::Perm.into()),
        Descriptor::Dir(d) => rustix::fs::futimens(&d.dir, &times).map_err(errno::sys),
        Descriptor::Stdin | Descriptor::Output(_) => Err(Errno::Badf.into()),
    }
}

pub(super) fn fd_read(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    iovs: types::IovecArray,
) -> Result<types::Size, types::Error> {
    match &**ctx.descriptor(fd)? {
        Descriptor::Stdin => read_stdin(ctx, memory, iovs),
        Descriptor::File(f) => read_file(ctx, memory, f, iovs, None),
        Descriptor::Output(_) | Descriptor::Dir(_) => Err(Errno::Badf.into()),
    }
}

pub(super) fn fd_pread(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    iovs: types::IovecArray,
    offset: types::Filesize,
) -> Result<types::Size, types::Error> {
    match &**ctx.descriptor(fd)? {
        Descriptor::File(f) => read_file(ctx, memory, f, iovs, Some(offset)),
        Descriptor::Stdin => Err(Errno::Spipe.into()),
        Descriptor::Output(_) | Descriptor::Dir(_) => Err(Errno::Badf.into()),
    }
}

pub(super) fn fd_write(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    ciovs: types::CiovecArray,
) -> Result<types::Size, types::Error> {
    match &**ctx.descriptor(fd)? {
        Descriptor::Output(stream) => write_output(ctx, memory, *stream, ciovs),
        Descriptor::File(f) => write_file(ctx, memory, f, ciovs, None),
        Descriptor::Stdin | Descriptor::Dir(_) => Err(Errno::Badf.into()),
    }
}

pub(super) fn fd_pwrite(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    ciovs: types::CiovecArray,
    offset: types::Filesize,
) -> Result<types::Size, types::Error> {
    match &**ctx.descriptor(fd)? {
        Descriptor::File(f) => write_file(ctx, memory, f, ciovs, Some(offset)),
        Descriptor::Output(_) => Err(Errno::Spipe.into()),
        Descriptor::Stdin | Descriptor::Dir(_) => Err(Errno::Badf.into()),
    }
}

pub(super) fn fd_prestat_get(
    ctx: &mut Ctx<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
) -> Result<types::Prestat, types::Error> {
    match &**ctx.descriptor(fd)? {
        Descriptor::Dir(crate::io::DirDesc { preopen: Some(p), .. }) => {
            let pr_name_len = u32::try_from(p.len()).map_err(|_| Errno::Nametoolong)?;
            Ok(types::Prestat::Dir(types::PrestatDir { pr_name_len }))
        }
        _ => Err(Errno::Badf.into()),
    }
}

/// The guest path of a preopen, without a terminating NUL; `nametoolong` when it does
/// not fit, `notdir` for anything but a preopen (as Wasmtime).
pub(super) fn fd_prestat_dir_name(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    path: GuestPtr<u8>,
    path_max_len: types::Size,
) -> Result<(), types::Error> {
    match &**ctx.descriptor(fd)? {
        Descriptor::Dir(crate::io::DirDesc { preopen: Some(p), .. }) => {
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

/// Moves `from` to `to`, closing what `to` was, atomically in the table. Both must be
/// open (as Wasmtime 48); a failure changes nothing.
pub(super) fn fd_renumber(
    ctx: &mut Ctx<'_>,
    _memory: &mut GuestMemory<'_>,
    from_fd: types::Fd,
    to_fd: types::Fd,
) -> Result<(), types::Error> {
    ctx.group.fds.renumber(u32::from(from_fd), u32::from(to_fd)).map_err(errno::fd)
}

pub(super) fn fd_seek(
    ctx: &mut Ctx<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    offset: types::Filedelta,
    whence: types::Whence,
) -> Result<types::Filesize, types::Error> {
    let d = ctx.descriptor(fd)?;
    let f = seekable(&d)?;
    let to = match whence {
        types::Whence::Set => rustix::fs::SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno::Inval)?),
        types::Whence::Cur => rustix::fs::SeekFrom::Current(offset),
        types::Whence::End => rustix::fs::SeekFrom::End(offset),
    };
    let _pos = f.position.lock();
    rustix::fs::seek(&f.file, to).map_err(errno::sys)
}

pub(super) fn fd_sync(ctx: &mut Ctx<'_>, _memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<(), types::Error> {
    sync(ctx, fd, |f| rustix::fs::fsync(f))
}

/// `fd_sync` / `fd_datasync`: `how` (`fsync`, `fdatasync`) runs on a pool thread that
/// holds its own reference to the descriptor, while this thread waits through the
/// teardown; a run that ends meanwhile stops the thread at once, and the sync finishes
/// on its own and then lets go of the descriptor (closing it if the guest did).
fn sync(ctx: &Ctx<'_>, fd: types::Fd, how: fn(&std::fs::File) -> rustix::io::Result<()>) -> Result<(), types::Error> {
    let d = ctx.descriptor(fd)?;
    file_of(&d)?;
    let result = ctx.group.run_blocking(ctx.slot, move || {
        let Descriptor::File(f) = &**d else { unreachable!("checked by file_of") };
        errno::retry_intr(|| how(&f.file))
    });
    result.map_err(errno::trap)?.map_err(errno::sys)
}

pub(super) fn fd_tell(
    ctx: &mut Ctx<'_>,
    _memory: &mut GuestMemory<'_>,
    fd: types::Fd,
) -> Result<types::Filesize, types::Error> {
    let d = ctx.descriptor(fd)?;
    let f = seekable(&d)?;
    rustix::fs::tell(&f.file).map_err(errno::sys)
}
