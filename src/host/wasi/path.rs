//! Everything under a directory descriptor: `path_open`, `path_filestat_get`,
//! `path_filestat_set_times`, `path_create_directory`, `path_remove_directory`,
//! `path_unlink_file`, `path_rename`, `path_link`, `path_symlink`, `path_readlink` and
//! `fd_readdir`.
//!
//! Every path resolves through `cap-primitives` from the directory descriptor's host
//! directory, so `..`, absolute paths and symlinks that would leave it are refused
//! (`perm`, as Wasmtime 48 reports them). `Lookupflags::SYMLINK_FOLLOW` decides whether
//! a symlink in the last component is followed. A `read_only` preopen, and every
//! directory opened beneath it, refuses whatever would create, change or remove
//! anything (`perm`, as Wasmtime 48).
//!
//! Nothing here blocks outside the run's teardown:
//! - every `open(2)` is `O_NONBLOCK`, so that a FIFO never waits in the kernel for its
//!   other end. Regular files, directories and block devices get a blocking descriptor
//!   back at once (one `F_SETFL`); FIFOs, character devices and sockets keep a
//!   non-blocking host descriptor, whose reads and writes wait through the teardown
//!   (`fd.rs`);
//! - opening a FIFO for writing only while it has no reader fails with `ENXIO` when
//!   non-blocking. POSIX's blocking open waits for a reader instead, and so do we unless
//!   the guest asked for `fdflags::nonblock` (then it gets `nxio`, as POSIX): the open is
//!   retried after a short sleep (1 ms, doubling up to 50 ms) through
//!   [`Signal::sleep_until`](crate::wait::Signal::sleep_until), so the call ends
//!   as soon as a reader appears or the run ends;
//! - opening a FIFO for reading returns at once, with or without a writer (as POSIX's
//!   non-blocking open); a read then waits through the teardown (`fd.rs`);
//! - `path_filestat_set_times` never opens the file for reading or writing (which is how
//!   cap-primitives' `set_times` works, and would block on a FIFO): it opens an
//!   `O_PATH` handle and uses `utimensat(AT_EMPTY_PATH)`.
//!
//! Where this is more than Wasmtime 48: `fdflags::{dsync, rsync, sync}` are honoured
//! (`O_DSYNC`, `O_RSYNC`, `O_SYNC`) where Wasmtime 48 and 46 return `notsup`; file
//! names in `fd_readdir` and link contents in `path_readlink` are passed as the host's
//! bytes (Wasmtime refuses non-UTF-8 with `ilseq`); `ino`/`dev` are the host's (as
//! `stat.rs`), not Wasmtime 48's hash of them.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use cap_primitives::fs::{
    DirOptions, FileTypeExt as _, FollowSymlinks, MetadataExt as _, OpenOptions, OpenOptionsExt as _,
};
use rustix::fs::{AtFlags, OFlags, Timespec, Timestamps};
use wasmtime_wasi::p1::types::{self, Errno, Filetype, Fstflags, Lookupflags, Oflags, Rights};
use wiggle::{GuestMemory, GuestPtr};

use super::errno;
use super::stat;
use super::Ctx;
use crate::io::{Descriptor, DirCursor, DirDesc, FileDesc, OpenFd};

/// The directory descriptor `fd`: `badf` for anything else (as Wasmtime 48).
fn dir_desc(ctx: &Ctx<'_>, fd: types::Fd) -> Result<std::sync::Arc<OpenFd>, types::Error> {
    let d = ctx.descriptor(fd)?;
    match &**d {
        Descriptor::Dir(_) => Ok(d),
        _ => Err(Errno::Badf.into()),
    }
}

/// The `DirDesc` inside a descriptor returned by [`dir_desc`].
fn as_dir(d: &Descriptor) -> Result<&DirDesc, types::Error> {
    match d {
        Descriptor::Dir(dir) => Ok(dir),
        _ => Err(Errno::Badf.into()),
    }
}

/// Refuses any change under a read-only preopen.
fn writable(d: &DirDesc) -> Result<(), types::Error> {
    if d.read_only {
        Err(Errno::Perm.into())
    } else {
        Ok(())
    }
}

fn follow(flags: Lookupflags) -> FollowSymlinks {
    if flags.contains(Lookupflags::SYMLINK_FOLLOW) {
        FollowSymlinks::Yes
    } else {
        FollowSymlinks::No
    }
}

/// The WASI file type of a host `st_mode` / `d_type` type (FIFOs have no WASI code:
/// `unknown`, as Wasmtime 48).
fn filetype_of(t: rustix::fs::FileType) -> Filetype {
    use rustix::fs::FileType as T;
    match t {
        T::RegularFile => Filetype::RegularFile,
        T::Directory => Filetype::Directory,
        T::Symlink => Filetype::SymbolicLink,
        T::CharacterDevice => Filetype::CharacterDevice,
        T::BlockDevice => Filetype::BlockDevice,
        T::Socket => Filetype::SocketStream,
        _ => Filetype::Unknown,
    }
}

/// Nanoseconds since the epoch, saturating (negative times are 0).
fn nanos(secs: i64, nsecs: i64) -> u64 {
    u64::try_from(secs).map_or(0, |s| s.saturating_mul(1_000_000_000).saturating_add(nsecs.max(0) as u64))
}

/// The WASI `filestat` of cap-primitives metadata (as `stat::filestat` for std's).
fn filestat(m: &cap_primitives::fs::Metadata) -> types::Filestat {
    types::Filestat {
        dev: m.dev(),
        ino: m.ino(),
        filetype: filetype_of(rustix::fs::FileType::from_raw_mode(m.mode())),
        nlink: m.nlink(),
        size: m.size(),
        atim: nanos(m.atime(), m.atime_nsec()),
        mtim: nanos(m.mtime(), m.mtime_nsec()),
        ctim: nanos(m.ctime(), m.ctime_nsec()),
    }
}

// ---------------------------------------------------------------------------------------
// path_open

/// Longest sleep between two attempts to open a FIFO for writing that has no reader.
const FIFO_RETRY_MAX: Duration = Duration::from_millis(50);

/// Longest path (and symlink target) a call may pass, as Linux's `PATH_MAX`: longer ones
/// fail with `nametoolong` before anything is copied into host memory.
const PATH_MAX: u32 = 4096;

/// A path argument from guest memory, refused over [`PATH_MAX`] bytes.
fn read_path<'m>(memory: &'m GuestMemory<'_>, path: GuestPtr<str>) -> Result<std::borrow::Cow<'m, str>, types::Error> {
    if path.len() > PATH_MAX {
        // A path that does not even fit in guest memory traps, as any bad pointer. (Not
        // `as_bytes().get(..)`: wiggle panics when the end passes 4 GiB.)
        let (start, len) = path.offset();
        let last = start.checked_add(len - 1).ok_or(wiggle::GuestError::PtrOverflow)?;
        memory.read(GuestPtr::<u8>::new(last))?;
        return Err(Errno::Nametoolong.into());
    }
    Ok(memory.as_cow_str(path)?)
}

pub(super) fn path_open(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    dirflags: types::Lookupflags,
    path: GuestPtr<str>,
    oflags: types::Oflags,
    fs_rights_base: types::Rights,
    _fs_rights_inheriting: types::Rights,
    fdflags: types::Fdflags,
) -> Result<types::Fd, types::Error> {
    let desc = ctx.descriptor(dirfd)?;
    let parent = match &**desc {
        Descriptor::Dir(d) => d,
        Descriptor::File(_) => return Err(Errno::Notdir.into()),
        _ => return Err(Errno::Badf.into()),
    };
    let path = read_path(memory, path)?;
    let path = Path::new(&*path);

    let creat = oflags.contains(Oflags::CREAT);
    let excl = oflags.contains(Oflags::EXCL);
    let trunc = oflags.contains(Oflags::TRUNC);
    let directory = oflags.contains(Oflags::DIRECTORY);
    if directory && (creat || excl || trunc) {
        return Err(Errno::Inval.into());
    }
    // Access as Wasmtime 48 decides it: creating or truncating writes; without the
    // write right the file is opened for reading (so the OS lets it be opened at all).
    let want_write = fs_rights_base.contains(Rights::FD_WRITE);
    let write = want_write || creat || trunc;
    let read = fs_rights_base.contains(Rights::FD_READ) || !want_write;
    if parent.read_only && write {
        return Err(Errno::Perm.into());
    }
    // Fail before creating or opening anything when the table is full.
    if ctx.group.fds.is_full() {
        return Err(Errno::Mfile.into());
    }

    let append = fdflags.contains(types::Fdflags::APPEND);
    let nonblock = fdflags.contains(types::Fdflags::NONBLOCK);
    let mut flags = OFlags::NONBLOCK | OFlags::NOCTTY;
    if directory {
        flags |= OFlags::DIRECTORY;
    }
    // O_APPEND through the custom flags: cap-primitives refuses `append` with `truncate`,
    // which POSIX allows. A descriptor that cannot write needs no host O_APPEND.
    let host_append = append && write;
    if host_append {
        flags |= OFlags::APPEND;
    }
    if fdflags.contains(types::Fdflags::SYNC) {
        flags |= OFlags::SYNC;
    }
    if fdflags.contains(types::Fdflags::DSYNC) {
        flags |= OFlags::DSYNC;
    }
    if fdflags.contains(types::Fdflags::RSYNC) {
        flags |= OFlags::RSYNC;
    }
    let mut opts = OpenOptions::new();
    opts.read(read).write(write)._cap_fs_ext_follow(follow(dirflags)).custom_flags(flags.bits() as i32);
    if creat {
        if excl {
            opts.create_new(true);
        } else {
            opts.create(true);
        }
    }
    if trunc {
        opts.truncate(true);
    }

    let file = open_interruptibly(ctx, parent, path, &opts, write && !read && !nonblock, dirflags)?;
    let meta = file.metadata().map_err(errno::io)?;
    let ft = meta.file_type();
    let d = if ft.is_dir() {
        // A directory: blocking mode (it has no use for O_NONBLOCK anyway).
        rustix::fs::fcntl_setfl(&file, OFlags::empty()).map_err(errno::sys)?;
        Descriptor::Dir(DirDesc::new(file, None, parent.read_only))
    } else if directory {
        return Err(Errno::Notdir.into());
    } else {
        let kind = stat::file_kind(ft);
        if !kind.may_block() {
            // Regular files and block devices are read and written directly.
            let keep = if host_append { OFlags::APPEND } else { OFlags::empty() };
            rustix::fs::fcntl_setfl(&file, keep).map_err(errno::sys)?;
        }
        Descriptor::File(FileDesc::new(file, kind, read, write, append, nonblock))
    };
    // On failure (the limit reached meanwhile) `d` is dropped here, closing the file.
    let fd = ctx.group.fds.insert(d).map_err(errno::fd)?;
    Ok(types::Fd::from(fd))
}

/// Opens `path` under `parent` (always `O_NONBLOCK`). With `wait_for_reader` (a
/// write-only open the guest wants blocking), a FIFO without a reader is retried until
/// one appears, sleeping through the teardown in between.
fn open_interruptibly(
    ctx: &Ctx<'_>,
    parent: &DirDesc,
    path: &Path,
    opts: &OpenOptions,
    wait_for_reader: bool,
    dirflags: Lookupflags,
) -> Result<std::fs::File, types::Error> {
    let mut delay = Duration::from_millis(1);
    let mut is_fifo = None;
    loop {
        let e = match cap_primitives::fs::open(&parent.dir, path, opts) {
            Ok(f) => return Ok(f),
            Err(e) => e,
        };
        if !wait_for_reader || e.raw_os_error() != Some(libc::ENXIO) {
            return Err(errno::io(e));
        }
        // ENXIO is also what a socket or a device without a driver gives: only a FIFO
        // waits for its other end.
        let fifo = *is_fifo.get_or_insert_with(|| {
            cap_primitives::fs::stat(&parent.dir, path, follow(dirflags)).is_ok_and(|m| m.file_type().is_fifo())
        });
        if !fifo {
            return Err(errno::io(e));
        }
        ctx.group.teardown.signal.sleep_until(ctx.slot, Some(Instant::now() + delay)).map_err(errno::trap)?;
        delay = (delay * 2).min(FIFO_RETRY_MAX);
    }
}

// ---------------------------------------------------------------------------------------
// metadata

pub(super) fn path_filestat_get(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    flags: types::Lookupflags,
    path: GuestPtr<str>,
) -> Result<types::Filestat, types::Error> {
    let desc = dir_desc(ctx, dirfd)?;
    let d = as_dir(&desc)?;
    let path = read_path(memory, path)?;
    let m = cap_primitives::fs::stat(&d.dir, Path::new(&*path), follow(flags)).map_err(errno::io)?;
    Ok(filestat(&m))
}

/// The `utimensat` time for one of `atim`/`mtim`: set, now, or left alone (`inval` for
/// both set and now, as Wasmtime 48).
fn timespec(set: bool, now: bool, ts: types::Timestamp) -> Result<Timespec, types::Error> {
    Ok(match (set, now) {
        (true, true) => return Err(Errno::Inval.into()),
        (true, false) => Timespec { tv_sec: (ts / 1_000_000_000) as i64, tv_nsec: (ts % 1_000_000_000) as _ },
        (false, true) => Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_NOW },
        (false, false) => Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT },
    })
}

pub(super) fn path_filestat_set_times(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    flags: types::Lookupflags,
    path: GuestPtr<str>,
    atim: types::Timestamp,
    mtim: types::Timestamp,
    fst_flags: types::Fstflags,
) -> Result<(), types::Error> {
    let times = Timestamps {
        last_access: timespec(fst_flags.contains(Fstflags::ATIM), fst_flags.contains(Fstflags::ATIM_NOW), atim)?,
        last_modification: timespec(fst_flags.contains(Fstflags::MTIM), fst_flags.contains(Fstflags::MTIM_NOW), mtim)?,
    };
    let desc = dir_desc(ctx, dirfd)?;
    let d = as_dir(&desc)?;
    let path = read_path(memory, path)?;
    writable(d)?;
    // An O_PATH handle opens nothing (no FIFO wait, no device open, no access needed);
    // with O_NOFOLLOW it is the symlink itself.
    let mut opts = OpenOptions::new();
    opts.read(true)._cap_fs_ext_follow(follow(flags)).custom_flags(OFlags::PATH.bits() as i32);
    let handle = cap_primitives::fs::open(&d.dir, Path::new(&*path), &opts).map_err(errno::io)?;
    match rustix::fs::utimensat(&handle, c"", &times, AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW) {
        Ok(()) => Ok(()),
        // Kernels before 5.8 have no AT_EMPTY_PATH for utimensat: the /proc magic link
        // of the handle reaches the same file (not followed further: the handle is it).
        Err(rustix::io::Errno::INVAL) => {
            let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle));
            rustix::fs::utimensat(rustix::fs::CWD, link.as_str(), &times, AtFlags::empty()).map_err(errno::sys)
        }
        Err(e) => Err(errno::sys(e)),
    }
}

// ---------------------------------------------------------------------------------------
// creating and removing

pub(super) fn path_create_directory(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    path: GuestPtr<str>,
) -> Result<(), types::Error> {
    let desc = dir_desc(ctx, dirfd)?;
    let d = as_dir(&desc)?;
    let path = read_path(memory, path)?;
    writable(d)?;
    cap_primitives::fs::create_dir(&d.dir, Path::new(&*path), &DirOptions::new()).map_err(errno::io)
}

pub(super) fn path_remove_directory(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    path: GuestPtr<str>,
) -> Result<(), types::Error> {
    let desc = dir_desc(ctx, dirfd)?;
    let d = as_dir(&desc)?;
    let path = read_path(memory, path)?;
    writable(d)?;
    cap_primitives::fs::remove_dir(&d.dir, Path::new(&*path)).map_err(errno::io)
}

pub(super) fn path_unlink_file(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    path: GuestPtr<str>,
) -> Result<(), types::Error> {
    let desc = dir_desc(ctx, dirfd)?;
    let d = as_dir(&desc)?;
    let path = read_path(memory, path)?;
    writable(d)?;
    cap_primitives::fs::remove_file(&d.dir, Path::new(&*path)).map_err(errno::io)
}

pub(super) fn path_rename(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    src_fd: types::Fd,
    src_path: GuestPtr<str>,
    dest_fd: types::Fd,
    dest_path: GuestPtr<str>,
) -> Result<(), types::Error> {
    let src = dir_desc(ctx, src_fd)?;
    let dest = dir_desc(ctx, dest_fd)?;
    let (src, dest) = (as_dir(&src)?, as_dir(&dest)?);
    let src_path = read_path(memory, src_path)?;
    let dest_path = read_path(memory, dest_path)?;
    writable(src)?;
    writable(dest)?;
    cap_primitives::fs::rename(&src.dir, Path::new(&*src_path), &dest.dir, Path::new(&*dest_path)).map_err(errno::io)
}

pub(super) fn path_link(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    src_fd: types::Fd,
    src_flags: types::Lookupflags,
    src_path: GuestPtr<str>,
    target_fd: types::Fd,
    target_path: GuestPtr<str>,
) -> Result<(), types::Error> {
    let src = dir_desc(ctx, src_fd)?;
    let target = dir_desc(ctx, target_fd)?;
    let (src, target) = (as_dir(&src)?, as_dir(&target)?);
    let src_path = read_path(memory, src_path)?;
    let target_path = read_path(memory, target_path)?;
    writable(src)?;
    writable(target)?;
    // A link to what a symlink points at is not offered (as Wasmtime 48): it could name
    // a file outside the sandbox.
    if src_flags.contains(Lookupflags::SYMLINK_FOLLOW) {
        return Err(Errno::Inval.into());
    }
    cap_primitives::fs::hard_link(&src.dir, Path::new(&*src_path), &target.dir, Path::new(&*target_path))
        .map_err(errno::io)
}

pub(super) fn path_symlink(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    src_path: GuestPtr<str>,
    dirfd: types::Fd,
    dest_path: GuestPtr<str>,
) -> Result<(), types::Error> {
    let desc = dir_desc(ctx, dirfd)?;
    let d = as_dir(&desc)?;
    let target = read_path(memory, src_path)?;
    let dest_path = read_path(memory, dest_path)?;
    writable(d)?;
    // The link keeps its relative contents; an absolute target is refused (`perm`, as
    // Wasmtime 48). Following it later resolves inside the sandbox like any path.
    cap_primitives::fs::symlink(Path::new(&*target), &d.dir, Path::new(&*dest_path)).map_err(errno::io)
}

pub(super) fn path_readlink(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    dirfd: types::Fd,
    path: GuestPtr<str>,
    buf: GuestPtr<u8>,
    buf_len: types::Size,
) -> Result<types::Size, types::Error> {
    let desc = dir_desc(ctx, dirfd)?;
    let d = as_dir(&desc)?;
    let path = read_path(memory, path)?;
    let link = cap_primitives::fs::read_link(&d.dir, Path::new(&*path)).map_err(errno::io)?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(link.as_os_str());
    // Silently truncated to the buffer, as readlink(2) and Wasmtime 48.
    let n = bytes.len().min(buf_len as usize);
    let n32 = u32::try_from(n).map_err(|_| Errno::Overflow)?;
    memory.copy_from_slice(&bytes[..n], buf.as_array(n32))?;
    Ok(n32)
}

// ---------------------------------------------------------------------------------------
// fd_readdir

/// The size of a WASI `dirent` in guest memory: d_next u64, d_ino u64, d_namlen u32,
/// d_type u8, 3 bytes of padding.
const DIRENT_SIZE: usize = 24;

/// One entry to hand over.
enum Entry {
    /// "." (entry 1) or ".." (entry 2), made up here with the directory's own inode (as
    /// Wasmtime 48 does for both).
    Dot(&'static [u8]),
    /// An entry of the host's stream.
    Host(rustix::fs::DirEntry),
}

/// Entry `cursor.pos + 1` (without consuming it), or `None` at the end.
fn next_entry(cursor: &mut DirCursor) -> Result<Option<Entry>, types::Error> {
    match cursor.pos {
        0 => return Ok(Some(Entry::Dot(b"."))),
        1 => return Ok(Some(Entry::Dot(b".."))),
        _ => {}
    }
    if let Some(e) = cursor.pending.take() {
        return Ok(Some(Entry::Host(e)));
    }
    loop {
        match cursor.stream.read() {
            None => return Ok(None),
            Some(Err(e)) => return Err(errno::sys(e)),
            Some(Ok(e)) => {
                let name = e.file_name().to_bytes();
                if name != b"." && name != b".." {
                    return Ok(Some(Entry::Host(e)));
                }
            }
        }
    }
}

/// The `d_type` of a host entry; a file system that does not report it costs one
/// `fstatat` (not following symlinks) for that entry.
fn entry_type(cursor: &DirCursor, e: &rustix::fs::DirEntry) -> Filetype {
    let t = e.file_type();
    if t != rustix::fs::FileType::Unknown {
        return filetype_of(t);
    }
    let stat = cursor.stream.fd().and_then(|fd| rustix::fs::statat(fd, e.file_name(), AtFlags::SYMLINK_NOFOLLOW));
    stat.map_or(Filetype::Unknown, |st| filetype_of(rustix::fs::FileType::from_raw_mode(st.st_mode)))
}

pub(super) fn fd_readdir(
    ctx: &mut Ctx<'_>,
    memory: &mut GuestMemory<'_>,
    fd: types::Fd,
    buf: GuestPtr<u8>,
    buf_len: types::Size,
    cookie: types::Dircookie,
) -> Result<types::Size, types::Error> {
    let desc = dir_desc(ctx, fd)?;
    let d = as_dir(&desc)?;
    let cap = buf_len as usize;
    let mut out = Vec::new();
    let mut guard = d.cursor.lock();
    let result = fill(ctx, d, &mut guard, cookie, cap, &mut out);
    if result.is_err() {
        // A stream that failed stays failed: start over next time.
        *guard = None;
    }
    result?;
    let n = u32::try_from(out.len()).map_err(|_| Errno::Overflow)?;
    if let Err(e) = memory.copy_from_slice(&out, buf.as_array(n)) {
        *guard = None;
        return Err(e.into());
    }
    Ok(n)
}

/// Writes the entries after `cookie` into `out`, at most `cap` bytes, the last one
/// truncated if it does not fit (as the WASI spec says: the guest then asks again from
/// that entry with a larger buffer). Reuses the cursor when the guest continues where
/// the last call stopped, so reading a directory takes time linear in its size.
fn fill(
    ctx: &Ctx<'_>,
    d: &DirDesc,
    slot: &mut Option<DirCursor>,
    cookie: u64,
    cap: usize,
    out: &mut Vec<u8>,
) -> Result<(), types::Error> {
    let cursor = match slot {
        Some(c) if c.pos <= cookie => c,
        Some(c) => {
            c.stream.rewind();
            c.pos = 0;
            c.pending = None;
            c
        }
        None => {
            let stream = rustix::fs::Dir::read_from(&d.dir).map_err(errno::sys)?;
            slot.insert(DirCursor { stream, _held: ctx.group.fds.hold(), pos: 0, pending: None })
        }
    };
    while cursor.pos < cookie {
        if next_entry(cursor)?.is_none() {
            return Ok(());
        }
        cursor.pos += 1;
    }
    let mut dir_ino = None;
    while out.len() < cap {
        let Some(entry) = next_entry(cursor)? else { break };
        let (ino, filetype, name): (u64, Filetype, &[u8]) = match &entry {
            Entry::Dot(name) => {
                let ino = match dir_ino {
                    Some(i) => i,
                    None => *dir_ino.insert(rustix::fs::fstat(d.dir.as_fd()).map_err(errno::sys)?.st_ino),
                };
                (ino, Filetype::Directory, name)
            }
            Entry::Host(e) => (e.ino(), entry_type(cursor, e), e.file_name().to_bytes()),
        };
        let namlen = u32::try_from(name.len()).map_err(|_| Errno::Overflow)?;
        let mut head = [0u8; DIRENT_SIZE];
        head[0..8].copy_from_slice(&(cursor.pos + 1).to_le_bytes());
        head[8..16].copy_from_slice(&ino.to_le_bytes());
        head[16..20].copy_from_slice(&namlen.to_le_bytes());
        head[20] = filetype as u8;
        let room = cap - out.len();
        if room < DIRENT_SIZE + name.len() {
            // The buffer ends inside this entry: hand over what fits, keep the entry
            // for the next call (which comes with this entry's cookie, `pos`).
            out.extend_from_slice(&head[..room.min(DIRENT_SIZE)]);
            out.extend_from_slice(&name[..room.saturating_sub(DIRENT_SIZE)]);
            if let Entry::Host(e) = entry {
                cursor.pending = Some(e);
            }
            break;
        }
        out.extend_from_slice(&head);
        out.extend_from_slice(name);
        cursor.pos += 1;
    }
    Ok(())
}
